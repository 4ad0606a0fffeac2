"""Scoring through a Vertex AI endpoint with Beam's own ``VertexAIModelHandlerJSON`` (``--scorer vertex``).

The Dataflow anomaly-detection guide scores with that handler; here it is the detector's third way to score,
beside the registry's champion in process and Beam's online detectors. Each batch's purchases go to the
endpoint as one ``:predict`` call made by the handler (its client, its retries on 429 and 5xx, its client-side
throttling), and each verdict names the model version the endpoint answered with.

Beam's handler takes no ``api_endpoint`` and no credentials: it calls ``aiplatform.init(project, location)``
and relies on the SDK's global configuration for the rest. :class:`LocalVertexHandler` is the smallest
adapter that reaches a local endpoint (``hyp endpoint``), and it changes two things only:

* before the handler's own ``__init__`` and ``create_client`` it calls ``aiplatform.init`` with
  ``api_endpoint``, REST transport and anonymous credentials, which the handler's later ``aiplatform.init``
  keeps (the SDK only overwrites what is passed); with no ``api_endpoint`` (Vertex AI itself) it does nothing;
* its ``request`` keeps Vertex's ``modelVersionId`` as each result's ``model_id`` where Beam's keeps the
  ``deployedModelId``, so the verdicts, the warehouse and ``/metrics`` name the model version, as in-process
  scoring does, and the orchestrator's probe can confirm a promotion.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

log = logging.getLogger(__name__)

MAX_INSTANCES = 1000  # instances per :predict call (Vertex limits a public endpoint's request to 1.5 MB)


def init_sdk(project: str, location: str, api_endpoint: str | None) -> None:
    """Point google-cloud-aiplatform at ``api_endpoint`` (a local endpoint: REST, anonymous credentials)."""
    from services.common import vertex_clients

    vertex_clients.init(project, location, api_endpoint)


def handler_class() -> type:
    """:class:`LocalVertexHandler`, defined on first use (importing Beam's handler imports the Vertex SDK)."""
    global _HANDLER
    if _HANDLER is not None:
        return _HANDLER
    from apache_beam.ml.inference import utils

    try:
        from apache_beam.ml.inference.vertex_ai_inference import VertexAIModelHandlerJSON
    except ImportError as exc:  # Beam's handler imports the Vertex SDK
        raise RuntimeError(f"--scorer vertex needs google-cloud-aiplatform (pip install it): {exc}") from None

    class LocalVertexHandler(VertexAIModelHandlerJSON):  # type: ignore[misc]
        """Beam's handler, with the SDK pointed at ``api_endpoint`` first (see the module's docstring)."""

        def __init__(
            self, endpoint_id: str, project: str, location: str, api_endpoint: str | None = None, **kwargs: Any
        ) -> None:
            self._sdk = (project, location, api_endpoint)
            init_sdk(*self._sdk)
            super().__init__(endpoint_id, project, location, **kwargs)

        def create_client(self) -> Any:
            init_sdk(*self._sdk)  # a worker process of its own starts with the SDK's defaults
            return super().create_client()

        def request(self, batch: Sequence[Any], model: Any, inference_args: dict[str, Any] | None = None) -> Any:
            prediction = model.predict(instances=list(batch), parameters=inference_args)
            return utils._convert_to_result(batch, prediction.predictions, prediction.model_version_id)

    _HANDLER = LocalVertexHandler
    return _HANDLER


_HANDLER: type | None = None


def _verdict(inference: Any, version: str) -> dict[str, Any]:
    """One prediction of the endpoint (the champion's columns; ``nearest_centroid_id`` as Vertex's ``[id]``)."""
    out: dict[str, Any] = {"model_version": version, "is_anomaly": False}
    if not isinstance(inference, dict):
        return out
    for name in ("score", "normalized_distance"):
        value = inference.get(name)
        out[name] = None if value is None else float(value)
    centroid = inference.get("nearest_centroid_id")
    if isinstance(centroid, list):
        centroid = centroid[0] if centroid else None
    if isinstance(centroid, float) and math.isnan(centroid):
        centroid = None
    out["nearest_centroid_id"] = None if centroid is None else int(centroid)
    out["is_anomaly"] = bool(inference.get("is_anomaly"))
    return out


class VertexScorer:
    """The detector's Scorer over a Vertex AI endpoint, through Beam's handler."""

    def __init__(self, endpoint_id: str, project: str, location: str, api_endpoint: str | None) -> None:
        self.handler = handler_class()(endpoint_id, project, location, api_endpoint)
        self._endpoint = self.handler.create_client()
        self.version: str | None = None
        log.info("scoring through Vertex AI endpoint %s at %s", endpoint_id, api_endpoint or "Vertex AI")

    def score(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
        verdicts: list[dict[str, Any]] = []
        version = self.version or ""
        for start in range(0, len(rows), MAX_INSTANCES):
            chunk = rows[start : start + MAX_INSTANCES]
            results: Iterable[Any] = self.handler.run_inference(chunk, self._endpoint)
            for result in results:
                version = str(result.model_id)
                verdicts.append(_verdict(result.inference, version))
        if len(verdicts) != len(rows):
            raise ValueError(f"the endpoint answered {len(verdicts)} predictions for {len(rows)} instances")
        self.version = version
        return verdicts, version

    def close(self) -> None:
        pass
