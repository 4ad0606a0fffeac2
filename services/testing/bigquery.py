"""Google's BigQuery client pointed at a local `hyp bigquery`, as a user configures it."""

from __future__ import annotations

from typing import Any


def bigquery_client(url: str, project: str = "hyp-local") -> Any:  # google.cloud.bigquery.Client
    """google-cloud-bigquery with its API endpoint at ``url`` (``http://127.0.0.1:PORT``) and anonymous credentials.

    The same as ``BIGQUERY_EMULATOR_HOST=url`` (the client uses that variable as its API endpoint), without
    touching the calling process's environment.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": url})
