"""Vertex AI resources through Google's own SDK: `hyp storage` and `hyp endpoint` as real processes on free
ports, the session's MLflow server (tests/fixtures/mlflow.py) with its trained champion behind them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from services.testing.hyp import HypProcess
from services.testing.storage import storage_client
from services.testing.vertex import vertex_init
from tests.services.vertex.containers import SERVER

STAGING = "hyp-vertex-staging"


@pytest.fixture(scope="module")
def storage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HypProcess]:
    tmp = tmp_path_factory.mktemp("storage")
    server = HypProcess("storage", "--data-dir", str(tmp / "data"), log_path=tmp / "storage.log").start(timeout=60)
    try:
        storage_client(server.url).create_bucket(STAGING)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def endpoint_server(
    request: pytest.FixtureRequest, storage_server: HypProcess, champion: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HypProcess]:
    """One `hyp endpoint` per test module; a module's ``ENDPOINT_ENV`` (a dict) adds to or overrides its settings."""
    tmp = tmp_path_factory.mktemp("endpoint")
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": champion.tracking_uri,
        "STORAGE_EMULATOR_HOST": storage_server.url,
        "HYP_ENDPOINT_RELOAD_INTERVAL_S": "0.5",
        # custom containers as local processes (the docker tier runs images: tests/docker/test_vertex_containers.py)
        "HYP_ENDPOINT_CONTAINERS": "local",
        "HYP_ENDPOINT_CONTAINER_START_TIMEOUT_S": "30",
        "HYP_ENDPOINT_CONTAINER_CHECK_INTERVAL_S": "0.5",  # a dead or unhealthy container noticed quickly
        **getattr(request.module, "ENDPOINT_ENV", {}),
    }
    with HypProcess("endpoint", log_path=tmp / "endpoint.log", env=env).start(timeout=120) as server:
        yield server


@pytest.fixture
def aiplatform(endpoint_server: HypProcess, storage_server: HypProcess, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The SDK initialised for the local server; its staging uploads go to hyp storage, as a user sets it up."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_server.url)
    return vertex_init(endpoint_server.url, staging_bucket=f"gs://{STAGING}")


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    """The stand-in custom container (containers.SERVER) as a script to run."""
    path = tmp_path / "server.py"
    path.write_text(SERVER)
    return path


@pytest.fixture
def gcs(storage_server: HypProcess) -> Any:
    return storage_client(storage_server.url)


def classifier(flip: bool = False) -> LogisticRegression:
    """A tiny two-feature classifier (``flip`` inverts its labels, so two models answer differently)."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return LogisticRegression().fit(X, 1 - y if flip else y)


def artifact_dir(root: Path, estimator: Any, filename: str = "model.joblib") -> Path:
    """A folder holding ``estimator`` as a prebuilt scikit-learn container expects it."""
    folder = root / uuid.uuid4().hex[:8]
    folder.mkdir(parents=True)
    if filename.endswith(".joblib"):
        joblib.dump(estimator, folder / filename)
    else:
        import pickle

        (folder / filename).write_bytes(pickle.dumps(estimator))
    return folder


def upload_folder(gcs: Any, folder: Path, bucket: str) -> str:
    """Copy a local folder's files to ``gs://bucket/<folder name>``; the URI."""
    target = gcs.bucket(bucket)
    if not target.exists():
        gcs.create_bucket(bucket)
    for path in folder.iterdir():
        target.blob(f"{folder.name}/{path.name}").upload_from_filename(str(path))
    return f"gs://{bucket}/{folder.name}"
