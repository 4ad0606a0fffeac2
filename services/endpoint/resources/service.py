"""The Vertex resources of one endpoint server: the model view, the endpoints, the operations, and what
each REST method does with them (blocking: the routes run these in a worker thread)."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.common import names
from services.common.diskfull import disk_full
from services.common.files import replace_atomically
from services.endpoint.resources import artifacts, containers, prebuilt
from services.endpoint.resources.endpoints import Endpoint, Endpoints, Servable, close
from services.endpoint.resources.errors import ApiError, invalid
from services.endpoint.resources.operations import Operations, new_id
from services.endpoint.resources.registry import ModelRegistry, Version, split_name
from services.endpoint.resources.supervisor import Supervised
from services.endpoint.resources.training import TrainingPipelines
from services.endpoint.settings import EndpointSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MlflowServable:
    """A model registered in MLflow without Vertex (``purchase-anomaly``), deployed on a new endpoint:
    instances are objects of named features, as on endpoint ``1``."""

    model: Any  # services.endpoint.serving.ServedModel
    max_instances: int

    def predict_json(self, instances: Sequence[Any]) -> bytes:
        from services.endpoint.instances import InputError, parse_vertex
        from services.endpoint.serving import predict_json

        try:
            batch = parse_vertex({"instances": instances}, self.max_instances, self.model.features)
            return predict_json(self.model, batch, vertex=True)
        except InputError as exc:
            raise invalid(str(exc)) from None


def ours(pyfunc: Any) -> bool:
    """Whether a loaded pyfunc is the project's anomaly model (models/pyfunc.py), which scores named features."""
    try:
        inner = pyfunc.unwrap_python_model()
    except Exception:  # not a custom PythonModel (a plain scikit-learn flavour, Keras, ...)
        return False
    return hasattr(inner, "score_rows") or hasattr(inner, "detector")


@dataclass(frozen=True)
class PyfuncServable:
    """Any other MLflow model: instances (objects of named columns, or rows of values) -> a DataFrame ->
    ``pyfunc.predict``; each output row (or value) becomes one prediction."""

    pyfunc: Any

    def predict_json(self, instances: Sequence[Any]) -> bytes:
        import numpy as np
        import orjson
        import pandas as pd

        frame = pd.DataFrame(list(instances))
        try:
            out = self.pyfunc.predict(frame)
        except Exception as exc:  # MLflow's schema enforcement and the model's own input errors
            raise invalid(f"instances: {type(exc).__name__}: {exc}") from None
        if isinstance(out, pd.DataFrame):
            rows: Any = out.to_dict(orient="records")
        elif isinstance(out, pd.Series):
            rows = out.tolist()
        else:
            rows = np.asarray(out).tolist()
        return orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY)


class VertexResources:
    """Models, endpoints and operations under ``settings``' project and location."""

    def __init__(self, settings: EndpointSettings) -> None:
        self.settings = settings
        self.project, self.location = settings.project, settings.location
        self.storage = artifacts.Storage(settings.storage_emulator_host)
        self.operations = Operations()
        self.endpoints = Endpoints(self.project, self.location, settings.max_instances)
        self._registry: ModelRegistry | None = None
        self.training = TrainingPipelines(
            self.project,
            self.location,
            self.storage,
            settings.storage_emulator_host,
            lambda body: self.registry.upload(body, self.check_artifact),
        )
        self._save_lock = threading.Lock()

    @property
    def registry(self) -> ModelRegistry:
        if self._registry is None:  # the MLflow client is built on first use, not at startup
            self._registry = ModelRegistry(self.settings.mlflow_tracking_uri, self.project, self.location)
        return self._registry

    def check_location(self, project: str, location: str) -> None:
        if (project, location) != (self.project, self.location):
            raise ApiError(
                "NOT_FOUND",
                f"Location `{names.location(project, location)}` not found: this server holds "
                f"`{names.location(self.project, self.location)}`",
            )

    def endpoint(self, project: str, location: str, endpoint_id: str) -> Any:
        """An endpoint created through the API; NOT_FOUND naming the full name as Vertex does."""
        if (project, location) != (self.project, self.location):
            raise ApiError("NOT_FOUND", f"Endpoint `{names.endpoint(project, location, endpoint_id)}` not found.")
        return self.endpoints.get(endpoint_id)

    def is_champion_endpoint(self, project: str, location: str, endpoint_id: str) -> bool:
        s = self.settings
        return (project, location, endpoint_id) == (s.project, s.location, s.endpoint_id)

    def _op(self, metadata: str, **kwargs: Any) -> dict[str, Any]:
        return self.operations.finish(self.project, self.location, metadata, **kwargs)

    # models
    def upload(self, body: dict[str, Any]) -> dict[str, Any]:
        model_id, version = self.registry.upload(body, self.check_artifact)
        log.info("model uploaded", extra={"fields": {"model": model_id, "version": version}})
        response = {"model": names.model(self.project, self.location, model_id), "modelVersionId": version}
        return self._op("UploadModelOperationMetadata", response_type="UploadModelResponse", response=response)

    def check_artifact(self, image_uri: str, artifact_uri: str) -> None:
        if artifact_uri and not artifact_uri.startswith("gs://"):
            raise invalid(f"artifact_uri `{artifact_uri}`: expected a gs:// URI (the SDK stages a local path)")
        artifacts.model_file(image_uri, artifact_uri, self.storage)

    def get_model(self, name: str) -> dict[str, Any]:
        body = self.registry.get(name)
        body["deployedModels"] = self.endpoints.deployed_on(body["name"])
        return body

    def delete_model(self, name: str) -> dict[str, Any]:
        model_id, _ = split_name(name)
        full = names.model(self.project, self.location, model_id)
        used = self.endpoints.deployed_on(full)
        if used:
            where = ", ".join(u["endpoint"] for u in used)
            raise ApiError("FAILED_PRECONDITION", f"Model `{full}` is deployed on {where}; undeploy it first.")
        self.registry.delete(name)
        return self._op("DeleteOperationMetadata")

    def delete_version(self, name: str) -> dict[str, Any]:
        model_id, version = split_name(name)
        full = names.model(self.project, self.location, model_id)
        resolved = self.registry.version(name).version if version else None
        used = [
            e
            for e in self.endpoints.all()
            for d in e.deployed
            if d.model_name == full and d.version.version == resolved
        ]
        if used:
            raise ApiError(
                "FAILED_PRECONDITION", f"`{full}@{resolved}` is deployed on {used[0].name}; undeploy it first."
            )
        self.registry.delete_version(name)
        return self._op("DeleteOperationMetadata")

    # endpoints
    def create_endpoint(self, body: dict[str, Any], endpoint_id: str | None) -> dict[str, Any]:
        if endpoint_id == self.settings.endpoint_id:
            raise ApiError("ALREADY_EXISTS", f"Endpoint `{self.endpoints.name(endpoint_id)}` exists.")
        endpoint = self.endpoints.create(body, endpoint_id)
        self.save()
        return self._op("CreateEndpointOperationMetadata", response_type="Endpoint", response=endpoint.resource())

    def update_endpoint(self, endpoint_id: str, body: dict[str, Any], mask: str) -> dict[str, Any]:
        updated = self.endpoints.update(endpoint_id, body, mask.split(",")).resource()
        self.save()
        return updated

    def delete_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        self.endpoints.delete(endpoint_id)
        self.save()
        return self._op("DeleteOperationMetadata")

    def deploy(self, endpoint_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Load the model, then add it: a model that cannot be served fails the operation, nothing added."""
        self.endpoints.get(endpoint_id)  # 404 before any work
        spec = body.get("deployedModel") or {}
        if not spec.get("model"):
            raise invalid("deployed_model.model: required")
        split = body.get("trafficSplit") or {}
        total = sum(v for v in split.values() if isinstance(v, int))
        if split and total != 100:
            raise invalid(f"traffic_split: the percentages sum to {total}; they must sum to 100")
        version = self.registry.version(spec["model"])
        deployed_id = new_id()
        try:
            served = self.load(version, endpoint_id, deployed_id)
        except Exception as exc:  # the operation fails with the reason; nothing is added
            error = exc if isinstance(exc, ApiError) else ApiError("INTERNAL", f"{type(exc).__name__}: {exc}")
            log.warning("deploy failed", extra={"fields": {"model": spec["model"], "error": error.message}})
            return self._op("DeployModelOperationMetadata", error=error)
        try:
            deployed = self.endpoints.deploy(endpoint_id, version, served, body, deployed_id)
        except BaseException:  # refused (the split, the endpoint gone meanwhile): nothing stays running
            close(served)
            raise
        self.save()
        log.info("model deployed", extra={"fields": {"endpoint": endpoint_id, "deployed": deployed.id}})
        response = {"deployedModel": deployed.resource()}
        return self._op("DeployModelOperationMetadata", response_type="DeployModelResponse", response=response)

    def load(self, version: Version, endpoint_id: str, deployed_id: str) -> Servable:
        """The model version ready to answer: a prebuilt image's artifact in process, a custom container
        started and healthy, or an MLflow model."""
        if version.image_uri and artifacts.framework(version.image_uri) is None:
            s = self.settings
            where = containers.Placement(
                s.project, endpoint_id, deployed_id, version.model_id, version.version, version.artifact_uri
            )
            spec = containers.Spec.parse(version.container)
            timeout = s.container_start_timeout_s

            def start() -> containers.CustomContainer:
                return containers.start(spec, where, s.containers, s.storage_emulator_host, timeout)

            return Supervised(
                start(),
                start,
                s.container_check_interval_s,
                deployed_id,
                probe_timeout_s=s.container_probe_timeout_s,
                liveness_failures=s.container_liveness_failures,
                max_restarts=s.container_max_restarts,
            )
        if version.image_uri:
            return prebuilt.load_prebuilt(version.image_uri, version.artifact_uri, self.storage)
        from models.registry import load_version
        from services.endpoint.model_source import served
        from services.endpoint.serving import warm_up

        pyfunc = load_version(self.settings.mlflow_tracking_uri, version.model_id, version.version)
        if not ours(pyfunc):  # any other MLflow model: instances as its pyfunc takes them
            return PyfuncServable(pyfunc)
        model = served(pyfunc, version=version.version, name=version.model_id)
        warm_up(model)
        return MlflowServable(model, self.settings.max_instances)

    def undeploy(self, endpoint_id: str, body: dict[str, Any]) -> dict[str, Any]:
        deployed_id = body.get("deployedModelId") or ""
        if not deployed_id:
            raise invalid("deployed_model_id: required")
        gone = self.endpoints.undeploy(endpoint_id, deployed_id, body.get("trafficSplit"))
        close(gone.served)  # requests already holding it may fail; new ones no longer pick it
        self.save()
        return self._op("UndeployModelOperationMetadata", response_type="UndeployModelResponse")

    # the state file (``--state-dir``): endpoints and their deployments survive a restart
    def save(self) -> None:
        """Write every endpoint and deployment to the state file, atomically (a crash leaves the old one)."""
        if self.settings.state_dir is None:
            return
        with self._save_lock:
            folder = self.settings.state_dir
            folder.mkdir(parents=True, exist_ok=True)
            state = json.dumps({"endpoints": self.endpoints.snapshot()}, indent=1)
            try:
                replace_atomically(folder / "endpoints.json", state.encode())
            except OSError as exc:
                if disk_full(exc) is None:
                    raise
                raise ApiError(  # the old file stays whole; what is served now is the change
                    "UNAVAILABLE",
                    f"hyp endpoint cannot write its state folder ({os.strerror(exc.errno or 0)}): the change is in "
                    "effect but not saved, so a restart would undo it. Free disk space; the next change saves "
                    "every endpoint.",
                ) from None

    def restore(self) -> None:
        """Read the state file and deploy again what it lists (blocking: models are loaded). A deployment
        whose model can no longer be loaded is left out, with a warning; the others keep their ids and split."""
        if self.settings.state_dir is None or not (self.settings.state_dir / "endpoints.json").exists():
            return
        saved = json.loads((self.settings.state_dir / "endpoints.json").read_text())
        for e in saved.get("endpoints", []):
            deployed = []
            for d in e.get("deployed", []):
                try:
                    version = self.registry.version(d["model"])
                    served = self.load(version, names.short(e["name"]), d["id"])
                except Exception as exc:
                    message = exc.message if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
                    log.warning("deployment not restored", extra={"fields": {"model": d["model"], "error": message}})
                    continue
                deployed.append(self.endpoints.deployed(version, served, d["displayName"], d["id"], d["createTime"]))
            ids = {d.id for d in deployed}
            endpoint = Endpoint(
                e["name"],
                e["displayName"],
                e.get("description", ""),
                dict(e.get("labels") or {}),
                e["createTime"],
                e["updateTime"],
                tuple(deployed),
                {k: v for k, v in (e.get("trafficSplit") or {}).items() if k in ids},
            )
            self.endpoints.restore(endpoint)
        log.info("endpoints restored", extra={"fields": {"endpoints": len(self.endpoints.all())}})

    def close(self) -> None:
        """Stop what the deployments run (custom containers) when the server stops; the state file keeps them."""
        for endpoint in self.endpoints.all():
            for deployed in endpoint.deployed:
                try:
                    close(deployed.served)
                except Exception:
                    log.exception("deployment not stopped", extra={"fields": {"deployed": deployed.id}})
