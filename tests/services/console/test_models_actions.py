"""The console's model actions against a real `hyp mlflow` and a real `hyp orchestrator`: promote and roll
back the champion alias through MLflow's REST API (checked with MLflow's own client), start an
orchestrator run with parameters and read its steps, and bad input refused with the reason."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from services.common.processes import free_port, wait_for
from services.console.app import create_app
from services.testing.hyp import HypProcess
from tests.services.console.conftest import console_settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.local_only("the console's actions over MLflow's and the orchestrator's APIs"),
]

MODEL = "console-test-model"


@pytest.fixture(scope="module")
def registry(mlflow_server):
    """Three versions of MODEL, each from a run with its own metrics; v2 is the champion."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server.tracking_uri)
    experiment = client.create_experiment(f"console-{free_port()}")
    if client.search_registered_models(f"name = '{MODEL}'"):  # another module of this session made it
        client.delete_registered_model(MODEL)
    client.create_registered_model(MODEL)
    for i in (1, 2, 3):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "f1", 0.5 + i / 10)
        client.log_metric(run.info.run_id, "precision", 0.9)
        client.set_terminated(run.info.run_id)
        client.create_model_version(MODEL, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(MODEL, "champion", "2")
    return client


@pytest.fixture(scope="module")
def orchestrator(mlflow_server, tmp_path_factory):
    home = tmp_path_factory.mktemp("orchestrator")
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server.tracking_uri,
        "HYP_MODEL_NAME": MODEL,
        "HYP_WAREHOUSE_DIR": str(home / "warehouse"),
        "HYP_ORCH_DATA_DIR": str(home / "runs"),
        "HYP_ORCH_WINDOW_WAIT_S": "0",
        "HYP_ORCH_STEP_RETRIES": "0",
    }
    with HypProcess("orchestrator", "--no-sensors", log_path=home / "orchestrator.log", env=env).start(90) as server:
        yield server.url


@pytest.fixture(scope="module")
def console(mlflow_server, registry, orchestrator, tmp_path_factory):
    settings = console_settings(
        MLFLOW_TRACKING_URI=mlflow_server.tracking_uri,
        HYP_MODEL_NAME=MODEL,
        HYP_CONSOLE_ORCHESTRATOR_URL=orchestrator,
        HYP_WAREHOUSE_DIR=str(tmp_path_factory.mktemp("warehouse")),
        HYP_CONSOLE_IDLE_REFRESH_S=600,
    )
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        yield client


def champion(registry) -> str:
    return registry.get_model_version_by_alias(MODEL, "champion").version


def test_versions_carry_their_metrics_side_by_side(console):
    versions = {v["version"]: v for v in console.get("/api/snapshot").json()["models"]["versions"]}
    assert set(versions) == {"1", "2", "3"}
    assert versions["3"]["metrics"]["f1"] == pytest.approx(0.8) and versions["1"]["metrics"]["f1"] == pytest.approx(0.6)
    assert versions["2"]["aliases"] == ["champion"]


def test_promote_then_roll_back(console, registry):
    assert champion(registry) == "2"
    promoted = console.post("/api/models/champion", json={"version": "3"})
    assert promoted.json() == {"champion": "3", "before": "2"}, promoted.text
    assert champion(registry) == "3"
    wait_for(lambda: console.get("/api/snapshot").json()["models"]["champion"] == "3", 20, "the page to see v3")
    rolled = console.post("/api/models/rollback", json={})
    assert rolled.json() == {"champion": "2", "before": "3"}, rolled.text  # the champion the console saw before
    assert champion(registry) == "2"
    missing = console.post("/api/models/champion", json={"version": "9"})
    assert missing.status_code == 404 and "no version 9" in missing.json()["error"]
    bad = console.post("/api/models/champion", json={"version": "v2"})
    assert bad.status_code == 422 and "body.version" in bad.json()["error"]


def test_an_orchestrator_run_is_started_with_parameters_and_its_steps_are_read(console):
    started = console.post(
        "/api/orchestrator/runs", json={"window_minutes": 5, "promote": False, "reason": "console test"}
    )
    assert started.status_code in (200, 202), started.text
    run = started.json()["run"]
    assert run["params"]["window_minutes"] == 5 and run["params"]["promote"] is False

    def finished():
        got = console.get(f"/api/orchestrator/runs/{run['id']}").json()
        return got if got["status"] != "running" else None

    done = wait_for(finished, 60, "the run to finish")
    assert done["steps"] and done["steps"][0]["name"] == "window"
    assert done["status"] == "failed"  # an empty warehouse: the window step names why
    assert done["steps"][0]["errors"]
    refused = console.post("/api/orchestrator/runs", json={"candidates": ["no-such-kind"]})
    assert refused.status_code == 422 and "candidates" in refused.json()["error"], refused.text
    unknown = console.post("/api/orchestrator/runs", json={"window": 5})
    assert unknown.status_code == 422 and "body.window" in unknown.json()["error"]
    assert console.get("/api/orchestrator/runs/nope-1").status_code == 400
