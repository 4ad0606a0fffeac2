"""CREATE MODEL without MODEL_REGISTRY is tracked as an MLflow run (as `hyp train` tracks a training) when
`hyp bigquery` has MLFLOW_TRACKING_URI: a real `hyp mlflow` and a real `hyp bigquery`, read back with MLflow's
own client. The run holds the options and the model's shape as parameters, the evaluation metrics (by hand,
as in test_ml_integration.py: Davies-Bouldin (2/3 + 1) / 10.5, mean squared distance 1) and the loss per
iteration; no model is registered. A registry that does not answer costs the run, never the model.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud import bigquery

from services.testing.hyp import HypProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.local_only("BigQuery ML does not write MLflow runs; hyp bigquery tracks CREATE MODEL as hyp train"),
]

PROJECT = "test-project"
XS = [0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 13.0]


def _server(home: Path, tracking_uri: str) -> HypProcess:
    env = dict(os.environ, HYP_WAREHOUSE_DIR=str(home / "warehouse"), HYP_PROJECT=PROJECT)
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    return HypProcess("bigquery", log_path=home / "bigquery.log", env=env).start(60)


def _client(url: str, monkeypatch: pytest.MonkeyPatch) -> bigquery.Client:
    from google.auth.credentials import AnonymousCredentials

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", url)
    return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials())


def _dataset_with_points(client: bigquery.Client) -> str:
    dataset = f"ds_{uuid.uuid4().hex[:10]}"
    client.create_dataset(dataset)
    client.query_and_wait(f"CREATE TABLE {dataset}.points (x FLOAT64)")
    client.query_and_wait(f"INSERT INTO {dataset}.points (x) VALUES " + ", ".join(f"({x})" for x in XS))
    return dataset


@pytest.fixture(scope="module")
def server(mlflow_server, tmp_path_factory) -> Iterator[HypProcess]:
    with _server(tmp_path_factory.mktemp("bqml-tracking"), mlflow_server.tracking_uri) as process:
        yield process


def _runs(tracking_uri: str, name: str) -> list:
    from models import registry

    client = registry.client(tracking_uri)
    experiment = client.get_experiment_by_name("bigquery-ml")
    assert experiment is not None
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.mlflow.runName = '{name}'")


def test_create_model_without_registry_is_a_tracked_run(server, mlflow_server, monkeypatch) -> None:
    from models import registry

    client = _client(server.url, monkeypatch)
    dataset = _dataset_with_points(client)
    client.query_and_wait(
        f"CREATE MODEL {dataset}.m OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2, STANDARDIZE_FEATURES=FALSE) "
        f"AS SELECT x FROM {dataset}.points"
    )
    [run] = _runs(mlflow_server.tracking_uri, f"CREATE MODEL {dataset}.m")
    params, metrics = run.data.params, run.data.metrics
    assert params["model_type"] == "KMEANS" and params["num_clusters"] == "2"
    assert params["standardize_features"] == "False" and params["features"] == "x" and params["fit_rows"] == "7"
    assert params["bigquery_model"] == f"{PROJECT}.{dataset}.m"
    assert metrics["davies_bouldin_index"] == pytest.approx((2 / 3 + 1) / 10.5)
    assert metrics["mean_squared_distance"] == pytest.approx(1.0)
    assert metrics["train_seconds"] >= 0
    history = registry.client(mlflow_server.tracking_uri).get_metric_history(run.info.run_id, "loss")
    assert len(history) >= 1 and history[-1].value == pytest.approx(1.0)  # the converged mean squared distance
    assert run.info.status == "FINISHED"
    names = [m.name for m in registry.client(mlflow_server.tracking_uri).search_registered_models()]
    assert "m" not in names  # a run only: no MODEL_REGISTRY, no registered model

    client.query_and_wait(
        f"CREATE MODEL {dataset}.p OPTIONS(MODEL_TYPE='PCA', NUM_PRINCIPAL_COMPONENTS=1) "
        f"AS SELECT x, 2 * x + 1 AS y FROM {dataset}.points"
    )
    [run] = _runs(mlflow_server.tracking_uri, f"CREATE MODEL {dataset}.p")
    assert run.data.metrics["total_explained_variance_ratio"] == pytest.approx(1.0)  # y is a line of x
    assert run.data.params["num_principal_components"] == "1" and run.data.params["features"] == "x,y"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_registry_that_does_not_answer_costs_the_run_not_the_model(tmp_path, monkeypatch) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    with _server(tmp_path, dead) as process:
        client = _client(process.url, monkeypatch)
        dataset = _dataset_with_points(client)
        client.query_and_wait(
            f"CREATE MODEL {dataset}.m OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2) AS SELECT x FROM {dataset}.points"
        )
        assert client.get_model(f"{PROJECT}.{dataset}.m").model_type == "KMEANS"
    assert f"not tracked in MLflow at MLFLOW_TRACKING_URI={dead}" in (tmp_path / "bigquery.log").read_text()
