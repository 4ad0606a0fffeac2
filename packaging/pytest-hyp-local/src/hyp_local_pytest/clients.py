"""Google's clients pointed at an emulator, built without touching ``os.environ``.

The client libraries are imported here, when a client is asked for, so the plugin loads in a test
environment that has only some of them.
"""

from __future__ import annotations

from typing import Any

GRPC_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def publisher(host: str, **kwargs: Any) -> Any:  # google.cloud.pubsub_v1.PublisherClient
    """google-cloud-pubsub's publisher on an insecure channel to ``host`` (``127.0.0.1:PORT``), as the
    client does itself when PUBSUB_EMULATOR_HOST is set."""
    import grpc
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    transport = PublisherGrpcTransport(channel=grpc.insecure_channel(host, options=GRPC_OPTIONS))
    return pubsub_v1.PublisherClient(transport=transport, **kwargs)


def subscriber(host: str, **kwargs: Any) -> Any:  # google.cloud.pubsub_v1.SubscriberClient
    """google-cloud-pubsub's subscriber on an insecure channel to ``host``."""
    import grpc
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    transport = SubscriberGrpcTransport(channel=grpc.insecure_channel(host, options=GRPC_OPTIONS))
    return pubsub_v1.SubscriberClient(transport=transport, **kwargs)


def bigquery(url: str, project: str) -> Any:  # google.cloud.bigquery.Client
    """google-cloud-bigquery with its API endpoint at ``url`` (``http://127.0.0.1:PORT``), anonymous
    credentials: what BIGQUERY_EMULATOR_HOST=url does."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery as bq

    return bq.Client(project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": url})


def storage(url: str, project: str) -> Any:  # google.cloud.storage.Client
    """google-cloud-storage with its API endpoint at ``url``, anonymous credentials: what
    STORAGE_EMULATOR_HOST=url does."""
    import google.cloud.storage as gcs
    from google.auth.credentials import AnonymousCredentials

    return gcs.Client(project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": url})
