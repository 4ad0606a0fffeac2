"""Google's own clients, pointed at the lab's services the way a participant points them (the checks read state
through them): google-cloud-bigquery (BIGQUERY_EMULATOR_HOST), google-cloud-storage (STORAGE_EMULATOR_HOST) and
google-cloud-aiplatform (``aiplatform.init``'s ``api_endpoint``, anonymous credentials). Imported on use: they
are the workshop's dependencies (the dev extra), not the services'."""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

from services.labs.settings import LabSettings

# Vertex's prebuilt scikit-learn serving image, as Google lists it; `hyp endpoint` serves it in process, never pulls.
SKLEARN_IMAGE = "europe-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-5:latest"


def _credentials() -> Any:
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()


def bigquery(s: LabSettings) -> Any:  # google.cloud.bigquery.Client
    """The BigQuery client on `hyp bigquery` (the variable is read when the client is built, then restored)."""
    from google.cloud import bigquery as bq

    with mock.patch.dict(os.environ, {"BIGQUERY_EMULATOR_HOST": s.bigquery_url}):
        return bq.Client(project=s.project, credentials=_credentials())


def storage(s: LabSettings) -> Any:  # google.cloud.storage.Client
    from google.cloud import storage as gcs

    with mock.patch.dict(os.environ, {"STORAGE_EMULATOR_HOST": s.storage_url}):
        return gcs.Client(project=s.project, credentials=_credentials())


def vertex(s: LabSettings) -> Any:  # the aiplatform module, initialised for the lab's endpoint server
    from services.common import vertex_clients

    return vertex_clients.init(s.project, s.location, s.endpoint_url, staging_bucket=f"gs://{s.staging_bucket}")
