"""Scoring purchases with a model deployed on Vertex AI, through google-cloud-aiplatform. The endpoint is handed
in, so tests pass one pointed at hyp-local's Vertex-compatible endpoint and production code passes
``aiplatform.Endpoint(ENDPOINT_RESOURCE_NAME)``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def flag_anomalies(endpoint: Any, purchases: Iterable[dict[str, float]]) -> list[bool]:
    """Whether the deployed model calls each purchase (``value``, ``tax``, ``shipping``) an anomaly."""
    instances = [{"value": p["value"], "tax": p["tax"], "shipping": p["shipping"]} for p in purchases]
    response = endpoint.predict(instances=instances)
    return [bool(prediction["is_anomaly"]) for prediction in response.predictions]
