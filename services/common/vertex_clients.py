"""google-cloud-aiplatform pointed at a local Vertex AI endpoint (``hyp endpoint``) without probing a cloud
metadata server: REST transport (the local server speaks Vertex's REST, not its gRPC) and anonymous
credentials. Without an API endpoint the SDK keeps its defaults (real Vertex AI, ambient credentials)."""

from __future__ import annotations

from typing import Any


def init(project: str, location: str, api_endpoint: str | None, *, staging_bucket: str | None = None) -> Any:
    """``aiplatform.init`` for ``api_endpoint`` (``host:port`` of a local endpoint) or, when None, for GCP; the
    aiplatform module. ``staging_bucket`` (``gs://...``): where ``Model.upload`` stages a local artifact folder
    (on ``hyp storage`` through ``STORAGE_EMULATOR_HOST``); without it the SDK asks GCP for a default bucket."""
    from google.cloud import aiplatform

    if not api_endpoint:
        aiplatform.init(project=project, location=location, staging_bucket=staging_bucket)
        return aiplatform
    from google.auth.credentials import AnonymousCredentials

    aiplatform.init(
        project=project,
        location=location,
        api_endpoint=api_endpoint,
        api_transport="rest",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        staging_bucket=staging_bucket,
    )
    return aiplatform
