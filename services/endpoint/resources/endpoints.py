"""Endpoints created through Vertex's API, the models deployed on them and their traffic split.

Held in this process's memory (an endpoint server restart forgets them; the models stay in the
registry). Each change builds the new state aside and swaps it in under one lock, so a request sees
an endpoint before or after a deploy, never half of one, and a failed deploy leaves nothing behind.
Every ``:predict`` picks one deployed model at random with the split's weights.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from services.common import names
from services.endpoint.resources.batching import BATCHED_BELOW, Batcher
from services.endpoint.resources.errors import ApiError, invalid, not_found
from services.endpoint.resources.operations import new_id, rfc3339
from services.endpoint.resources.registry import Version
from services.endpoint.responses import tail


class Servable(Protocol):
    def predict_json(self, instances: Sequence[Any]) -> bytes:
        """The predictions of ``instances`` as one encoded JSON array."""


def close(served: Servable) -> None:
    """Release what a served model holds (a custom container's process); most hold nothing."""
    closer = getattr(served, "close", None)
    if closer is not None:
        closer()


@dataclass(frozen=True)
class Deployed:
    id: str
    version: Version
    model_name: str  # projects/p/locations/l/models/M
    display_name: str
    served: Servable
    create_time: str
    tail: bytes  # deployedModelId, model, modelDisplayName, modelVersionId, encoded once
    batcher: Batcher | None = None  # concurrent requests in one call, for models that score rows alone

    async def predict_json(self, instances: Sequence[Any]) -> bytes:
        """The predictions of ``instances``, off the event loop (a user's model may take milliseconds, which
        must not hold up endpoint 1), batched with concurrent requests where the model allows."""
        if self.batcher is not None and len(instances) < BATCHED_BELOW:
            return await self.batcher.predict_json(instances)
        return await run_in_threadpool(self.served.predict_json, instances)

    def resource(self) -> dict[str, Any]:
        resource = {
            "id": self.id,
            "model": self.model_name,
            "modelVersionId": self.version.version,
            "displayName": self.display_name,
            "createTime": self.create_time,
            "dedicatedResources": {"machineSpec": {"machineType": "local"}, "minReplicaCount": 1},
        }
        status = getattr(self.served, "status", None)  # a custom container's health (supervisor.Supervised)
        if status is not None:
            resource["status"] = status()
        return resource


@dataclass(frozen=True)
class Endpoint:
    name: str
    display_name: str
    description: str
    labels: dict[str, str]
    create_time: str
    update_time: str
    deployed: tuple[Deployed, ...] = ()
    traffic: dict[str, int] = field(default_factory=dict)

    def resource(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "displayName": self.display_name,
            "description": self.description,
            "labels": self.labels,
            "createTime": self.create_time,
            "updateTime": self.update_time,
            "deployedModels": [d.resource() for d in self.deployed],
            "trafficSplit": dict(self.traffic),
        }

    def pick(self, rng: random.Random) -> Deployed:
        """The deployed model one request goes to, drawn with the traffic split's weights."""
        candidates = [d for d in self.deployed if self.traffic.get(d.id, 0) > 0]
        if not candidates:
            raise ApiError("FAILED_PRECONDITION", f"Endpoint `{self.name}` has no deployed model taking traffic.")
        if len(candidates) == 1:
            return candidates[0]
        return rng.choices(candidates, weights=[self.traffic[d.id] for d in candidates])[0]


def check_split(split: dict[str, int], ids: Sequence[str]) -> dict[str, int]:
    """A traffic split over ``ids``: known ids, percentages summing to 100 (or empty with nothing deployed)."""
    clean = {}
    for key, value in split.items():
        if key not in ids:
            raise invalid(f"traffic_split: `{key}` is not a deployed model of this endpoint")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
            raise invalid(f"traffic_split[{key}]: {value!r} is not a percentage from 0 to 100")
        clean[key] = value
    total = sum(clean.values())
    if ids and total != 100:
        raise invalid(f"traffic_split: the percentages sum to {total}; they must sum to 100")
    if not ids and total:
        raise invalid("traffic_split: no deployed model left to take traffic")
    return clean


def camel(field: str) -> str:
    """``traffic_split`` -> ``trafficSplit`` (a REST update mask may name fields either way)."""
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


class Endpoints:
    """The endpoints of one server (project/location in their names), by id."""

    def __init__(self, project: str, location: str, max_rows: int = 10_000) -> None:
        self.project, self.location = project, location
        self.max_rows = max_rows  # the most rows of one batched predict call
        self._by_id: dict[str, Endpoint] = {}
        self._lock = threading.Lock()
        self.rng = random.Random()

    def name(self, endpoint_id: str) -> str:
        return names.endpoint(self.project, self.location, endpoint_id)

    def create(self, body: dict[str, Any], endpoint_id: str | None) -> Endpoint:
        display_name = body.get("displayName") or ""
        if not display_name:
            raise invalid("endpoint.display_name: required")
        endpoint_id = endpoint_id or new_id()
        now = rfc3339(time.time())
        endpoint = Endpoint(
            self.name(endpoint_id),
            display_name,
            body.get("description") or "",
            dict(body.get("labels") or {}),
            now,
            now,
        )
        with self._lock:
            if endpoint_id in self._by_id:
                raise ApiError("ALREADY_EXISTS", f"Endpoint `{endpoint.name}` exists.")
            self._by_id[endpoint_id] = endpoint
        return endpoint

    def get(self, endpoint_id: str) -> Endpoint:
        endpoint = self._by_id.get(endpoint_id)
        if endpoint is None:
            raise not_found("Endpoint", self.name(endpoint_id))
        return endpoint

    def all(self) -> list[Endpoint]:
        return list(self._by_id.values())

    def delete(self, endpoint_id: str) -> None:
        with self._lock:
            endpoint = self.get(endpoint_id)
            if endpoint.deployed:
                ids = ", ".join(d.id for d in endpoint.deployed)
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f"Endpoint `{endpoint.name}` has deployed models ({ids}); undeploy them first.",
                )
            del self._by_id[endpoint_id]

    def deployed(
        self, version: Version, served: Servable, display_name: str, deployed_id: str, create_time: str
    ) -> Deployed:
        """A loaded model version as an endpoint holds it, its answer's tail encoded once."""
        model_name = names.model(self.project, self.location, version.model_id)
        rest = {
            "deployedModelId": deployed_id,
            "model": model_name,
            "modelDisplayName": version.display_name,
            "modelVersionId": version.version,
        }
        batcher = Batcher(served, self.max_rows) if hasattr(served, "predict_rows") else None  # type: ignore[arg-type]
        return Deployed(deployed_id, version, model_name, display_name, served, create_time, tail(rest), batcher)

    def deploy(
        self, endpoint_id: str, version: Version, served: Servable, body: dict[str, Any], deployed_id: str
    ) -> Deployed:
        """Add a loaded model under its new deployed-model id; ``"0"`` in the split is that id."""
        spec = body.get("deployedModel") or {}
        display_name = spec.get("displayName") or version.display_name
        deployed = self.deployed(version, served, display_name, deployed_id, rfc3339(time.time()))
        with self._lock:
            endpoint = self.get(endpoint_id)
            split = dict(body.get("trafficSplit") or {})
            if not split:  # Vertex: with no split the new model takes no traffic, unless it is the only one
                split = {**endpoint.traffic} if endpoint.deployed else {deployed_id: 100}
            elif "0" in split:
                split[deployed_id] = split.pop("0")
            ids = [d.id for d in endpoint.deployed] + [deployed_id]
            traffic = check_split(split, ids)
            self._by_id[endpoint_id] = replace(
                endpoint, deployed=(*endpoint.deployed, deployed), traffic=traffic, update_time=deployed.create_time
            )
        return deployed

    def update(self, endpoint_id: str, body: dict[str, Any], mask: Sequence[str]) -> Endpoint:
        """``endpoints.patch``: the fields ``mask`` names (display name, description, labels, traffic split)."""
        fields = {camel(f.strip()) for f in mask if f.strip()}
        unknown = fields - {"displayName", "description", "labels", "trafficSplit"}
        if unknown:
            raise invalid(f"update_mask: {', '.join(sorted(unknown))} cannot be updated here")
        with self._lock:
            endpoint = self.get(endpoint_id)
            changes: dict[str, Any] = {}
            if "displayName" in fields:
                if not body.get("displayName"):
                    raise invalid("endpoint.display_name: required")
                changes["display_name"] = body["displayName"]
            if "description" in fields:
                changes["description"] = body.get("description") or ""
            if "labels" in fields:
                changes["labels"] = dict(body.get("labels") or {})
            if "trafficSplit" in fields:
                changes["traffic"] = check_split(
                    dict(body.get("trafficSplit") or {}), [d.id for d in endpoint.deployed]
                )
            updated = replace(endpoint, **changes, update_time=rfc3339(time.time()))
            self._by_id[endpoint_id] = updated
        return updated

    def undeploy(self, endpoint_id: str, deployed_id: str, split: dict[str, int] | None) -> Deployed:
        """Take a deployed model off; it is returned for the caller to close once no request uses it."""
        with self._lock:
            endpoint = self.get(endpoint_id)
            remaining = tuple(d for d in endpoint.deployed if d.id != deployed_id)
            gone = [d for d in endpoint.deployed if d.id == deployed_id]
            if not gone:
                raise ApiError("NOT_FOUND", f"Deployed model `{deployed_id}` not found on `{endpoint.name}`.")
            ids = [d.id for d in remaining]
            if split:
                traffic = check_split({k: v for k, v in split.items() if k != deployed_id or v}, ids)
            elif endpoint.traffic.get(deployed_id, 0) and remaining:
                raise invalid(
                    f"traffic_split: deployed model `{deployed_id}` takes {endpoint.traffic[deployed_id]}% of the "
                    "traffic; give the split of the models that stay"
                )
            else:
                traffic = {k: v for k, v in endpoint.traffic.items() if k != deployed_id}
            now = rfc3339(time.time())
            self._by_id[endpoint_id] = replace(endpoint, deployed=remaining, traffic=traffic, update_time=now)
        return gone[0]

    def restore(self, endpoint: Endpoint) -> None:
        """Put back an endpoint read from the state file (its deployments are added with :meth:`deploy`)."""
        with self._lock:
            self._by_id[names.short(endpoint.name)] = endpoint

    def snapshot(self) -> list[dict[str, Any]]:
        """What the state file keeps: each endpoint and its deployed models by model version."""
        return [
            {
                **{k: v for k, v in e.resource().items() if k != "deployedModels"},
                "deployed": [
                    {
                        "id": d.id,
                        "model": f"{d.model_name}@{d.version.version}",
                        "displayName": d.display_name,
                        "createTime": d.create_time,
                    }
                    for d in e.deployed
                ],
            }
            for e in self.all()
        ]

    def deployed_on(self, model_name: str) -> list[dict[str, str]]:
        """Vertex's ``deployedModels`` refs of a model: which endpoints serve it."""
        return [
            {"endpoint": e.name, "deployedModelId": d.id}
            for e in self.all()
            for d in e.deployed
            if d.model_name == model_name
        ]
