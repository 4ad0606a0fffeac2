from __future__ import annotations

import contextlib
import sqlite3
import uuid

import pytest
from fastapi.testclient import TestClient

from services.orchestrator.api import create_app
from services.orchestrator.history import RunHistory
from services.orchestrator.runner import Orchestrator
from tests.services.orchestrator.helpers import StubOps


@pytest.fixture
def client(settings_for, warehouse_with_purchases):
    orch = Orchestrator(settings_for(), StubOps(champion="1", champion_f1=0.1))
    with TestClient(create_app(orch, run_sensors=False)) as c:
        yield c, orch


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"window_minutes": -5}, "window_minutes"),
        ({"max_rows": "many"}, "max_rows"),
        ({"holdout_fraction": 1.5}, "holdout_fraction"),
        ({"candidates": []}, "candidates"),
        ({"candidates": ["nope"]}, "candidates"),
        ({"windw_minutes": 5}, "windw_minutes"),
    ],
)
def test_bad_trigger_parameters_get_a_4xx_naming_the_field(client, body, field):
    c, orch = client
    response = c.post("/runs", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert response.json()["error"].startswith(f"{field}:")
    assert orch.history.list() == []


def test_post_runs_starts_a_run_and_get_runs_shows_it(client):
    c, orch = client
    response = c.post("/runs", json={"candidates": ["threshold"], "reason": "demo"})
    assert response.status_code == 202, response.text
    run_id = response.json()["run"]["id"]
    assert orch.wait(120)
    record = c.get(f"/runs/{run_id}").json()
    assert record["status"] == "succeeded" and record["params"]["candidates"] == ["threshold"]
    assert record["trigger"] == {"kind": "manual", "reason": "demo"}
    assert [r["id"] for r in c.get("/runs").json()["runs"]] == [run_id]
    assert c.get("/runs/unknown").status_code == 404
    metrics = c.get("/metrics").text
    assert 'hyp_orchestrator_runs_total{trigger="manual"} 1.0' in metrics
    assert 'hyp_orchestrator_run_outcomes_total{decision="promote",status="succeeded"} 1.0' in metrics
    assert c.get("/health").json()["status"] == "ok"
    assert c.get("/openapi.json").json()["paths"]["/runs"]["post"]


def test_a_post_while_a_run_is_in_progress_joins_it(settings_for, warehouse_with_purchases):
    ops = StubOps(champion="1", champion_f1=0.1)
    ops.release.clear()  # hold the first run inside its train step
    orch = Orchestrator(settings_for(), ops)
    with TestClient(create_app(orch, run_sensors=False)) as c:
        first = c.post("/runs", json={})
        assert first.status_code == 202 and first.json()["created"] is True
        assert ops.entered.wait(120)
        second = c.post("/runs", json={"reason": "again"})
        assert second.status_code == 200, second.text
        assert second.json()["created"] is False and second.json()["run"]["id"] == first.json()["run"]["id"]
        assert c.get("/health").json()["run_in_progress"] == first.json()["run"]["id"]
        ops.release.set()
        assert orch.wait(120)
    record = orch.history.get(first.json()["run"]["id"])
    assert record["coalesced_triggers"][0]["reason"] == "again"


class FullDiskHistory(RunHistory):
    """A real SQLite run history that, while ``full`` is set, has no room left: its pages capped at what it has
    and their free space taken by small filler rows, so SQLite refuses a run's record with SQLITE_FULL, as it
    does on a full disk."""

    full = False

    def _connect(self) -> sqlite3.Connection:
        con = super()._connect()
        if self.full:
            con.execute(f"PRAGMA max_page_count = {con.execute('PRAGMA page_count').fetchone()[0]}")
            with contextlib.suppress(sqlite3.OperationalError):
                for n in range(100_000):
                    con.execute("INSERT INTO runs VALUES (?, '', 'filler', '{}')", (f"{uuid.uuid4().hex[:8]}{n}",))
        return con


@pytest.mark.local_only("the orchestrator's run history (Vertex Pipelines keeps run records itself)")
def test_a_full_disk_refuses_a_run_with_503_and_a_run_that_cannot_record_its_end_frees_the_orchestrator(
    settings_for, warehouse_with_purchases
):
    settings = settings_for()
    history = FullDiskHistory(settings.history_path)
    ops = StubOps(champion="1", champion_f1=0.1)
    orch = Orchestrator(settings, ops, history=history)
    with TestClient(create_app(orch, run_sensors=False)) as c:
        history.full = True
        refused = c.post("/runs", json={})
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert refused.json()["error"].startswith("hyp orchestrator cannot write its data folder (No space left")
        assert c.get("/health").json()["run_in_progress"] is None
        history.full = False  # space is back

        ops.release.clear()  # hold the run in its train step, then fill the disk under it
        first = c.post("/runs", json={})
        assert first.status_code == 202 and ops.entered.wait(120)
        history.full = True
        ops.release.set()
        assert orch.wait(120)  # its end could not be written, and the orchestrator is free all the same
        history.full = False
        second = c.post("/runs", json={})
        assert second.status_code == 202 and second.json()["created"] is True
        assert orch.wait(120)
    assert history.get(second.json()["run"]["id"])["status"] == "succeeded"
