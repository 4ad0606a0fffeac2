"""Google Pub/Sub client factories that never probe a cloud metadata server.

With an emulator host the clients get an insecure channel to it (no credentials
are looked up, no mutation of ``os.environ``); without one they use the ambient
credentials of real Pub/Sub.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the client library loads on first use, not at import
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient


def publisher(emulator_host: str | None, **kwargs: Any) -> PublisherClient:
    from google.cloud import pubsub_v1

    if emulator_host:
        import grpc
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

        channel = grpc.insecure_channel(
            emulator_host,
            options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
        )
        return pubsub_v1.PublisherClient(transport=PublisherGrpcTransport(channel=channel), **_strip(kwargs))
    return pubsub_v1.PublisherClient(**kwargs)


def subscriber(emulator_host: str | None, **kwargs: Any) -> SubscriberClient:
    from google.cloud import pubsub_v1

    if emulator_host:
        import grpc
        from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

        channel = grpc.insecure_channel(
            emulator_host,
            options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
        )
        return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel), **_strip(kwargs))
    return pubsub_v1.SubscriberClient(**kwargs)


def _strip(kwargs: dict[str, Any]) -> dict[str, Any]:
    # credentials belong to the transport once one is given
    return {k: v for k, v in kwargs.items() if k not in {"credentials", "client_options"}}
