"""What the endpoint's routes share, apart from HTTP: the served model, scoring, the resource and metrics.

One :class:`Predictor` per app (``app.state.predictor``); routes get it through
``services.endpoint.deps.PredictorDep``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from services.common import names
from services.endpoint.instances import Batch, InputError
from services.endpoint.metrics import EndpointMetrics
from services.endpoint.responses import raw_headers, tail
from services.endpoint.serving import ModelHolder, ModelSource, ServedModel, predict_json
from services.endpoint.settings import EndpointSettings


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Answers:
    """What every answer of one model version carries, encoded once: headers and Vertex's fields."""

    model: ServedModel
    headers: list[tuple[bytes, bytes]]  # X-Model-Version
    vertex_headers: list[tuple[bytes, bytes]]  # and the Vertex endpoint and deployed model ids
    vertex_tail: bytes  # deployedModelId, model, modelDisplayName, modelVersionId after the predictions


class Predictor:
    """The model ``source``'s alias served under ``settings``: its holder (hot switch) and its metrics."""

    def __init__(self, settings: EndpointSettings, source: ModelSource) -> None:
        self.settings = settings
        self.metrics = EndpointMetrics()
        self.holder = ModelHolder(source, on_swap=self._swapped)
        self.created = rfc3339(time.time())
        self.name = names.endpoint(settings.project, settings.location, settings.endpoint_id)
        self.model_resource = names.model(settings.project, settings.location, settings.model_name)
        self._children: dict[tuple[Any, ...], Any] = {}
        self._answers: Answers | None = None

    def _swapped(self, new: ServedModel, old: ServedModel | None) -> None:
        if old is not None:
            self.metrics.model_version.remove(old.name, old.version)
            self.metrics.reloads.inc()
        self.metrics.model_version.labels(new.name, new.version).set(1)

    def served(self) -> ServedModel:
        """The model serving now; InputError(503) while none is loaded."""
        model = self.holder.current
        if model is None:
            raise InputError(f"no model loaded yet ({self.holder.last_error or 'loading'})", status=503)
        return model

    def answers(self, model: ServedModel) -> Answers:
        """``model``'s :class:`Answers` (kept for the model last asked about: the one serving)."""
        answers = self._answers
        if answers is None or answers.model is not model:
            s = self.settings
            version = {"X-Model-Version": model.version}
            ids = {"X-Vertex-AI-Endpoint-Id": s.endpoint_id, "X-Vertex-AI-Deployed-Model-Id": s.deployed_model_id}
            rest = {
                "deployedModelId": s.deployed_model_id,
                "model": self.model_resource,
                "modelDisplayName": model.name,
                "modelVersionId": model.version,
            }
            answers = Answers(model, raw_headers(version), raw_headers({**version, **ids}), tail(rest))
            self._answers = answers
        return answers

    def check_resource(self, project: str, location: str, endpoint: str) -> None:
        """InputError(404) unless the URL names this endpoint, as Vertex answers."""
        s = self.settings
        if (project, location, endpoint) != (s.project, s.location, s.endpoint_id):
            raise InputError(f"Endpoint `{names.endpoint(project, location, endpoint)}` not found.", status=404)

    async def score(self, model: ServedModel, batch: Batch, *, vertex: bool) -> bytes:
        """The predictions' JSON array (encoded column by column, no per-row objects)."""
        self.metrics.batch_size.observe(batch.rows)
        if batch.rows <= self.settings.inline_rows:
            encoded = predict_json(model, batch, vertex=vertex)
        else:
            encoded = await run_in_threadpool(predict_json, model, batch, vertex=vertex)
        self.counted(self.metrics.predictions, model.version).inc(batch.rows)
        return encoded

    def counted(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once (prometheus_client's labels() costs microseconds)."""
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe(self, route: str, status: int, start: float) -> None:
        self.counted(self.metrics.requests, route, str(status)).inc()
        self.counted(self.metrics.latency, route).observe(time.perf_counter() - start)

    def endpoint_resource(self) -> dict[str, Any]:
        """The Endpoint resource as Vertex describes it: name, display name, the deployed model."""
        s, model = self.settings, self.holder.current
        deployed: list[dict[str, Any]] = []
        loaded = self.created
        if model is not None:
            loaded = rfc3339(model.loaded_at)
            deployed.append(
                {
                    "id": s.deployed_model_id,
                    "model": self.model_resource,
                    "modelVersionId": model.version,
                    "displayName": model.name,
                    "createTime": loaded,
                    "dedicatedResources": {"machineSpec": {"machineType": "local"}, "minReplicaCount": 1},
                }
            )
        return {
            "name": self.name,
            "createTime": self.created,
            "updateTime": loaded if deployed else self.created,
            "displayName": f"{s.model_name}-endpoint",
            "deployedModels": deployed,
            "trafficSplit": {s.deployed_model_id: 100} if deployed else {},
        }
