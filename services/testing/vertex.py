"""Google's Vertex AI SDK (google-cloud-aiplatform) pointed at a local endpoint.

Only ``aiplatform.init``'s ``api_endpoint``, ``api_transport`` and ``credentials`` differ from a call to
Vertex AI on GCP; the SDK then sends the same REST requests it sends there. (``workshop_call`` in
tests/services/endpoint/test_vertex_sdk.py spells the workshop's own call out in full on purpose: the one
intended twin of this helper.)
"""

from __future__ import annotations

from typing import Any

from services.common import names


def vertex_endpoint(
    api_endpoint: str, endpoint_id: str = "1", *, project: str = "hyp-local", location: str = "europe-west1"
) -> Any:  # aiplatform.Endpoint (google-cloud-aiplatform is a test dependency, imported on use)
    from google.cloud import aiplatform

    from services.common import vertex_clients

    vertex_clients.init(project, location, api_endpoint)
    return aiplatform.Endpoint(names.endpoint(project, location, endpoint_id))


# A Vertex prebuilt scikit-learn serving image, as Google lists them; served in process, never pulled.
SKLEARN_IMAGE = "europe-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-5:latest"


def vertex_init(
    api_endpoint: str, *, staging_bucket: str | None = None, project: str = "hyp-local", location: str = "europe-west1"
) -> Any:  # the aiplatform module, initialised
    """``aiplatform.init`` pointed at a local endpoint server. ``staging_bucket`` (``gs://...`` on ``hyp storage``,
    reached through ``STORAGE_EMULATOR_HOST`` in this process's environment) is where ``Model.upload`` stages a
    local artifact folder, as on GCP; without it the SDK would ask GCP's Resource Manager about a default bucket."""
    from services.common import vertex_clients

    return vertex_clients.init(project, location, api_endpoint, staging_bucket=staging_bucket)
