"""The console's SQL box is confined to the warehouse: each construct that reaches outside it (files,
URLs, extensions, settings, writes) gets HTTP 400 with a one-line ``{"error"}`` naming it; the warehouse's
tables still answer. In process (TestClient) and through ``hyp console`` as a real process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from services.common.names import LABEL_SQL
from services.common.processes import free_port
from services.console.app import create_app
from services.console.settings import ConsoleSettings
from services.testing.hyp import HypProcess
from tests.services.warehouse.test_confinement import SECRET, assert_nothing_written, refused_sql
from tests.services.warehouse.test_confinement import warehouse as warehouse  # the fixture

GROUP_BY = f"SELECT {LABEL_SQL} AS anomaly, count(*) AS n FROM pubsub_direct GROUP BY 1 ORDER BY 1"


def console_env(warehouse_dir: Path) -> dict[str, str]:
    dead = f"http://127.0.0.1:{free_port()}"
    return {
        "HYP_CONSOLE_PUBSUB_URL": dead,
        "HYP_CONSOLE_DETECTOR_METRICS_URL": dead + "/metrics",
        "HYP_CONSOLE_ENDPOINT_URL": dead,
        "HYP_CONSOLE_PROCESSOR_URL": dead,
        "HYP_CONSOLE_ORCHESTRATOR_URL": dead,
        "MLFLOW_TRACKING_URI": dead,
        "HYP_WAREHOUSE_DIR": str(warehouse_dir),
        "HYP_CONSOLE_SUBSCRIBE": "false",
        "HYP_CONSOLE_PROBE_TIMEOUT_S": "0.5",
    }


def assert_confined(post, root: Path) -> None:  # post: sql -> (status, json)
    for sql, named in refused_sql(root):
        status, body = post(sql)
        assert status == 400, (sql, status, body)
        assert set(body) == {"error"} and named in body["error"] and "\n" not in body["error"], (sql, body)
        assert SECRET not in body["error"]
    assert_nothing_written(root)
    status, body = post(GROUP_BY)
    assert status == 200, body
    assert body["rows"] == [[False, 4], [True, 2]]


@pytest.fixture
def client(warehouse: Path) -> Iterator[TestClient]:
    settings = ConsoleSettings(**console_env(warehouse))  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as c:
        yield c


def test_sql_box_refuses_everything_outside_the_warehouse(client: TestClient, warehouse: Path) -> None:
    def post(sql: str) -> tuple[int, dict]:
        response = client.post("/api/sql", json={"sql": sql})
        return response.status_code, response.json()

    assert_confined(post, warehouse)


@pytest.mark.integration
def test_hyp_console_refuses_everything_outside_the_warehouse(warehouse: Path, tmp_path: Path) -> None:
    env = {**os.environ, **console_env(warehouse)}
    with HypProcess("console", log_path=tmp_path / "console.log", env=env).start(60) as console:

        def post(sql: str) -> tuple[int, dict]:
            response = httpx.post(console.url + "/api/sql", json={"sql": sql}, timeout=30)
            return response.status_code, response.json()

        assert_confined(post, warehouse)


def test_a_runaway_query_gets_408_and_is_stopped(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.console.routes import sql as route

    monkeypatch.setattr(route, "SQL_TIMEOUT_S", 0.5)
    runaway = "SELECT count(*) FROM " + ", ".join(f"pubsub_direct t{i}" for i in range(16))  # 6**16 rows
    slow = client.post("/api/sql", json={"sql": runaway})
    assert slow.status_code == 408 and "the query was stopped" in slow.json()["error"], slow.text
    assert client.post("/api/sql", json={"sql": "SELECT 1 AS one"}).json()["rows"] == [[1]]
