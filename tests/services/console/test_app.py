"""The console app with every source down: it answers, says what is unhealthy, never a 500."""

from __future__ import annotations

import re
from datetime import datetime
from importlib.resources import files

import pytest
from fastapi.testclient import TestClient

from services.console.app import create_app
from tests.services.console.conftest import console_settings


@pytest.fixture
def client(tmp_path):
    from services.warehouse import append

    append(
        tmp_path,
        "pubsub_direct",
        [
            {"subscription_name": "s", "message_id": str(i), "publish_time": datetime(2026, 11, 22), "data": "{}"}
            for i in range(3)
        ],
    )
    settings = console_settings(
        HYP_WAREHOUSE_DIR=str(tmp_path),
        HYP_CONSOLE_PROBE_TIMEOUT_S=0.5,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def test_page_and_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "hyp-local" in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200


def test_snapshot_reports_every_dead_service_as_unhealthy(client):
    snap = client.get("/api/snapshot").json()
    health = {s["key"]: s["healthy"] for s in snap["services"]}
    assert health.pop("console") is True
    assert health.pop("warehouse") is True
    assert set(health) == {"pubsub", "detector", "mlflow", "endpoint", "processor", "orchestrator"}
    assert not any(health.values())
    assert all(s["error"] for s in snap["services"] if not s["healthy"])
    assert snap["warehouse"]["tables"]["pubsub_direct"] == 3
    assert snap["models"]["healthy"] is False


def test_sql_box_answers_and_refuses_writes(client):
    ok = client.post("/api/sql", json={"sql": "SELECT count(*) AS n FROM pubsub_direct"})
    assert ok.status_code == 200
    assert ok.json() == {"columns": ["n"], "rows": [[3]], "total_rows": 1, "truncated": False}
    write = client.post("/api/sql", json={"sql": "DELETE FROM pubsub_direct"})
    assert write.status_code == 400 and "only SELECT" in write.json()["error"]
    bad = client.post("/api/sql", json={"sql": "SELECT nope FROM pubsub_direct"})
    assert bad.status_code == 400 and "nope" in bad.json()["error"]
    assert client.post("/api/sql", json={"sql": ""}).status_code == 422


def test_static_assets_reference_nothing_off_the_machine():
    static = files("services.console") / "static"
    for name in ("index.html", "app.js", "style.css"):
        text = (static / name).read_text()
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (name, urls)  # an XML namespace, never fetched
        assert "@import" not in text


def test_sql_box_answers_in_plain_json_and_truncates(client):
    cells = client.post(
        "/api/sql",
        json={
            "sql": "SELECT TIMESTAMP '2026-11-22 08:00:00' AS t, CAST(1.25 AS NUMERIC) AS d,"
            " CAST('nan' AS FLOAT64) AS n, b'x' AS b, [1, 2] AS l"
        },
    )  # BigQuery SQL: a TIMESTAMP is an instant in UTC
    assert cells.status_code == 200, cells.text
    assert cells.json()["rows"] == [["2026-11-22T08:00:00+00:00", 1.25, None, "x", "[1, 2]"]]
    hundred = "SELECT * FROM pubsub_direct, UNNEST(GENERATE_ARRAY(1, 100))"
    many = client.post("/api/sql", json={"sql": hundred}).json()
    assert many["total_rows"] == 300 and len(many["rows"]) == 200 and many["truncated"] is True
