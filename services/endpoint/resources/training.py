"""Vertex AI training pipelines (``aiplatform.CustomTrainingJob``): the user's training code run as a local
process, its artifact uploaded as a model.

``CustomTrainingJob(script_path=..., container_uri=...)`` packages the script as a Python source
distribution, stages it on Cloud Storage (hyp storage) and creates a TrainingPipeline whose one worker
pool runs ``python -m <module>`` from that package in ``container_uri``, a prebuilt training image. Here
the image is not pulled: the package is fetched from hyp storage and its module is run by this
machine's Python (the packages the image would hold, and the job's ``requirements``, must be installed
here), with Vertex's variables: ``AIP_MODEL_DIR`` (``<base output>/model/``, where the script saves its
artifact, on hyp storage through ``STORAGE_EMULATOR_HOST``), ``AIP_CHECKPOINT_DIR``,
``AIP_TENSORBOARD_LOG_DIR``, ``CLOUD_ML_PROJECT_ID``. A worker pool with a ``containerSpec`` runs its
``command`` + ``args`` the same way.

When the process exits 0 and the job names a serving image (``model_serving_container_image_uri``), the
model directory is uploaded as a model version (``modelToUpload``, as ``Model.upload`` would) and the
pipeline ends ``PIPELINE_STATE_SUCCEEDED`` naming it; otherwise ``PIPELINE_STATE_FAILED`` with the exit
code and the end of the output. Pipelines live in this process's memory.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.common import names
from services.endpoint.resources import artifacts
from services.endpoint.resources.errors import ApiError, invalid, not_found
from services.endpoint.resources.operations import new_id, rfc3339

log = logging.getLogger(__name__)

LOG_TAIL = 2000  # characters of the training output quoted in a failed pipeline
CUSTOM_TASK = "gs://google-cloud-aiplatform/schema/trainingjob/definition/custom_task_1.0.0.yaml"

# (upload request body) -> (model id, version id): the registry's Model.upload
Upload = Callable[[dict[str, Any]], tuple[str, str]]


def camel_keys(value: Any) -> Any:
    """A Struct's keys in camelCase: the SDK writes ``trainingTaskInputs`` in either case, as Vertex accepts."""
    if isinstance(value, dict):
        return {camel(k): camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# what the training process gets of this server's environment: the basics, and the emulators' addresses this
# server was given (local-only: on Vertex a job reaches BigQuery and Pub/Sub with its service account; here its
# unchanged Google clients reach hyp bigquery and the Pub/Sub emulator through the variables they read)
KEPT_ENV = ("PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV", "BIGQUERY_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST")


def worker_command(pool: dict[str, Any], work: Path, storage: artifacts.Storage) -> tuple[list[str], dict[str, str]]:
    """The argv and extra environment of a worker pool: a Python package's module, or a container's command."""
    package = pool.get("pythonPackageSpec")
    if package:
        module = package.get("pythonModule") or ""
        if not module:
            raise invalid("worker_pool_specs[0].python_package_spec.python_module: required")
        paths = []
        for uri in package.get("packageUris") or []:
            folder, _, name = uri.rpartition("/")
            archive = storage.download(folder, name, work / "packages")
            paths.append(str(unpack(archive, work / "src")))
        env = {e["name"]: str(e.get("value", "")) for e in package.get("env") or ()}
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return [sys.executable, "-m", module, *package.get("args", [])], env
    container = pool.get("containerSpec") or {}
    command = [*container.get("command", []), *container.get("args", [])]
    if not command:
        raise invalid(
            "worker_pool_specs[0].container_spec: no command to run as a local process (images are not run here)"
        )
    return command, {e["name"]: str(e.get("value", "")) for e in container.get("env") or ()}


def unpack(archive: Path, dest: Path) -> Path:
    """A source distribution's root folder (where its packages are), extracted safely."""
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    roots = [p for p in dest.iterdir() if p.is_dir()]
    return roots[0] if len(roots) == 1 else dest


class TrainingPipelines:
    """The training pipelines of one server, each run in a thread of its own."""

    def __init__(
        self, project: str, location: str, storage: artifacts.Storage, storage_host: str | None, upload: Upload
    ) -> None:
        self.project, self.location = project, location
        self.storage, self.storage_host, self.upload = storage, storage_host, upload
        self._by_id: dict[str, dict[str, Any]] = {}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def name(self, pipeline_id: str) -> str:
        return f"{names.location(self.project, self.location)}/trainingPipelines/{pipeline_id}"

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("displayName"):
            raise invalid("training_pipeline.display_name: required")
        if body.get("trainingTaskDefinition") != CUSTOM_TASK:
            raise invalid(f"training_task_definition: only {CUSTOM_TASK} (CustomTrainingJob) is run here")
        inputs = camel_keys(body.get("trainingTaskInputs") or {})
        pools = inputs.get("workerPoolSpecs") or []
        if not pools:
            raise invalid("training_task_inputs.worker_pool_specs: required")
        if not (inputs.get("baseOutputDirectory") or {}).get("outputUriPrefix", "").startswith("gs://"):
            raise invalid("training_task_inputs.base_output_directory: a gs:// URI is required")
        pipeline_id = new_id()
        now = rfc3339(time.time())
        pipeline = {
            **{k: v for k, v in body.items() if k not in ("name", "state", "error")},
            "trainingTaskInputs": inputs,
            "name": self.name(pipeline_id),
            "state": "PIPELINE_STATE_RUNNING",
            "createTime": now,
            "startTime": now,
            "updateTime": now,
        }
        with self._lock:
            self._by_id[pipeline_id] = pipeline
        threading.Thread(target=self._run, args=(pipeline_id,), name=f"training-{pipeline_id}", daemon=True).start()
        return dict(pipeline)

    def get(self, pipeline_id: str) -> dict[str, Any]:
        with self._lock:
            pipeline = self._by_id.get(pipeline_id)
            if pipeline is None:
                raise not_found("TrainingPipeline", self.name(pipeline_id))
            return dict(pipeline)

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(p) for p in self._by_id.values()]

    def cancel(self, pipeline_id: str) -> None:
        self.get(pipeline_id)
        with self._lock:
            process = self._processes.get(pipeline_id)
            self._set(pipeline_id, state="PIPELINE_STATE_CANCELLING")
        if process is not None:
            from services.common.processes import stop_group

            stop_group(process)

    def _set(self, pipeline_id: str, **fields: Any) -> None:
        pipeline = self._by_id[pipeline_id]
        pipeline.update(fields, updateTime=rfc3339(time.time()))

    def _run(self, pipeline_id: str) -> None:
        pipeline = self.get(pipeline_id)
        try:
            with tempfile.TemporaryDirectory(prefix="hyp-training-") as tmp:
                code, output = self._train(pipeline_id, pipeline, Path(tmp))
            with self._lock:
                cancelled = self._by_id[pipeline_id]["state"] == "PIPELINE_STATE_CANCELLING"
            if cancelled:
                self._finish(pipeline_id, "PIPELINE_STATE_CANCELLED", ApiError("CANCELLED", "cancelled"))
                return
            if code != 0:
                tail = output.strip()[-LOG_TAIL:]
                raise ApiError("INTERNAL", f"The training process exited with code {code}. Its last output:\n{tail}")
            model = self._upload(pipeline)
            self._finish(pipeline_id, "PIPELINE_STATE_SUCCEEDED", model=model)
        except ApiError as exc:
            self._finish(pipeline_id, "PIPELINE_STATE_FAILED", exc)
        except Exception as exc:
            log.exception("training pipeline failed", extra={"fields": {"pipeline": pipeline_id}})
            self._finish(pipeline_id, "PIPELINE_STATE_FAILED", ApiError("INTERNAL", f"{type(exc).__name__}: {exc}"))

    def _train(self, pipeline_id: str, pipeline: dict[str, Any], work: Path) -> tuple[int, str]:
        inputs = pipeline["trainingTaskInputs"]
        base = inputs["baseOutputDirectory"]["outputUriPrefix"].rstrip("/")
        argv, extra = worker_command(inputs["workerPoolSpecs"][0], work, self.storage)
        keep = {k: v for k, v in os.environ.items() if k in KEPT_ENV}
        env = {
            **keep,
            "AIP_MODEL_DIR": f"{base}/model/",
            "AIP_CHECKPOINT_DIR": f"{base}/checkpoints/",
            "AIP_TENSORBOARD_LOG_DIR": f"{base}/logs/",
            "CLOUD_ML_PROJECT_ID": self.project,
            "CLOUD_ML_REGION": self.location,
            **({"STORAGE_EMULATOR_HOST": self.storage_host} if self.storage_host else {}),
            **extra,
        }
        log_path = work / "training.log"
        with open(log_path, "wb") as out:
            try:
                process = subprocess.Popen(
                    argv, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            except OSError as exc:
                raise invalid(f"the training command `{argv[0]}` cannot be run here: {exc}") from None
            with self._lock:
                self._processes[pipeline_id] = process
            code = process.wait()
            with self._lock:
                self._processes.pop(pipeline_id, None)
        log.info("training process ended", extra={"fields": {"pipeline": pipeline_id, "code": code}})
        return code, log_path.read_text(errors="replace")

    def _upload(self, pipeline: dict[str, Any]) -> dict[str, Any] | None:
        """The model directory as a model version (when the job names a serving image): ``modelToUpload``."""
        model = pipeline.get("modelToUpload")
        if not model:
            return None
        base = pipeline["trainingTaskInputs"]["baseOutputDirectory"]["outputUriPrefix"].rstrip("/")
        model = {**model, "artifactUri": model.get("artifactUri") or f"{base}/model"}
        body = {"model": model, "modelId": pipeline.get("modelId"), "parentModel": pipeline.get("parentModel")}
        model_id, version = self.upload({k: v for k, v in body.items() if v})
        return {**model, "name": names.model(self.project, self.location, model_id), "versionId": version}

    def _finish(
        self, pipeline_id: str, state: str, error: ApiError | None = None, model: dict[str, Any] | None = None
    ) -> None:
        with self._lock:
            fields: dict[str, Any] = {"state": state, "endTime": rfc3339(time.time())}
            if error is not None:
                fields["error"] = error.rpc_status()
            if model is not None:
                fields["modelToUpload"] = model
            self._set(pipeline_id, **fields)
        log.info("training pipeline ended", extra={"fields": {"pipeline": pipeline_id, "state": state}})
