"""A promotion by the orchestrator moves what endpoint 1 serves, with no failed request during the switch.

Real parts only: `hyp mlflow` (the session's server), `hyp orchestrator` and `hyp endpoint` as processes on
free ports, a warehouse of labelled purchases. A client thread calls endpoint 1's ``:predict`` through Google's
Vertex SDK (google-cloud-aiplatform, only ``aiplatform.init``'s endpoint and credentials changed) without a
pause, from before the second run starts until the new version has answered for a while; every answer's
``model_version_id`` is recorded, and every exception counted.

The orchestrator runs with HYP_PROMOTION_MIN_DELTA=-1 so that its second run promotes whatever it trains:
what is tested is the switch, not the gate (tests/services/orchestrator/test_integration.py tests the gate).
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from services.common.processes import wait_for
from services.testing.hyp import HypProcess
from services.testing.vertex import vertex_endpoint
from tests.services.orchestrator.helpers import synthetic_purchases

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.local_only("the orchestrator's promotion moving endpoint 1, which follows @champion, is hyp-local's"),
]

INSTANCES = [{"tax": 8.4, "shipping": 4.99, "value": 40.0}]
AFTER = 30  # answers of the new version the client sees before it stops


class Client:
    """Calls endpoint 1's :predict through the SDK in a loop; records (version, deployed model) or the failure."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint = vertex_endpoint(endpoint_url)
        self.versions: list[str] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="predict-client", daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                answer = self.endpoint.predict(instances=INSTANCES, timeout=10)
            except Exception as exc:  # every failure counts, whatever its type
                self.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if len(answer.predictions) != len(INSTANCES):
                self.failures.append(f"{len(answer.predictions)} predictions for {len(INSTANCES)} instances")
            self.versions.append(str(answer.model_version_id))

    def seen(self, version: str) -> int:
        return sum(1 for v in list(self.versions) if v == version)


def _run(orch: HypProcess, candidates: list[str], reason: str) -> dict[str, Any]:
    """POST /runs, then poll GET /runs/{id} until the run ends (bounded)."""
    created = httpx.post(f"{orch.url}/runs", json={"candidates": candidates, "reason": reason}, timeout=30)
    assert created.status_code == 202, created.text
    run_id = created.json()["run"]["id"]

    def ended() -> dict[str, Any] | None:
        record = httpx.get(f"{orch.url}/runs/{run_id}", timeout=10).json()
        return record if record["status"] != "running" else None

    record = wait_for(ended, 300, f"orchestrator run {run_id}", interval=0.5)
    assert record["status"] == "succeeded", record
    assert record["decision"] == "promote", record.get("reason")
    assert record["consumers"]["endpoint"]["status"] == "confirmed", record["consumers"]
    return record


def test_promotion_moves_endpoint_1_with_no_failed_request(mlflow_server, tmp_path):
    model_name = f"promo-{uuid.uuid4().hex[:6]}"  # not the session's purchase-anomaly: other tests use it
    warehouse = tmp_path / "warehouse"
    synthetic_purchases(warehouse, 3000, start=datetime(2026, 11, 22, 8, 0, 0), seconds_apart=0.5)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server.tracking_uri,
        "HYP_MODEL_NAME": model_name,
    }
    # not waited on: endpoint 1 answers /health once a first @champion exists, which the first run makes
    endpoint = HypProcess(
        "endpoint", "--model-name", model_name, "--reload-interval", "0.5",
        log_path=tmp_path / "endpoint.log", env=env,
    ).start(wait=False)  # fmt: skip
    orch_env = {
        **env,
        "HYP_ORCH_ENDPOINT_URL": endpoint.url,
        "HYP_ORCH_WINDOW_WAIT_S": "0",
        "HYP_ORCH_MIN_ROWS": "500",
        "HYP_ORCH_CONFIRM_TIMEOUT_S": "60",
        "HYP_PROMOTION_MIN_DELTA": "-1",
    }
    orch = HypProcess(
        "orchestrator", "--no-sensors", "--data-dir", str(tmp_path / "orch"), "--warehouse-dir", str(warehouse),
        log_path=tmp_path / "orchestrator.log", env=orch_env,
    )  # fmt: skip
    client = None
    try:
        orch.start(timeout=120)
        first = _run(orch, ["kmeans"], "the first champion")
        v1 = str(first["promoted_version"])  # confirmed: endpoint 1 reported it, so it answers from now on
        client = Client(endpoint.url)
        client.thread.start()
        wait_for(lambda: client.seen(v1) >= 20 or client.failures, 60, "endpoint 1 answering with v1")
        assert client.failures == [], client.failures[:5]

        second = _run(orch, ["kmeans"], "a promotion under traffic")
        v2 = str(second["promoted_version"])
        assert v2 != v1
        wait_for(lambda: client.seen(v2) >= AFTER or client.failures, 60, f"{AFTER} answers of v{v2}")
    finally:
        if client is not None:
            client.stop.set()
            client.thread.join(30)
        orch.stop()
        endpoint.stop()
    versions = client.versions
    print(f"\n{len(versions)} predictions: {versions.count(v1)} by v{v1}, then {versions.count(v2)} by v{v2}")
    assert client.failures == [], f"{len(client.failures)} failed requests during the switch: {client.failures[:5]}"
    assert set(versions) == {v1, v2}, set(versions)
    switch = versions.index(v2)
    assert versions[0] == v1 and all(v == v2 for v in versions[switch:]), "the endpoint went back to v1"
