"""The console's table browser and histograms against a real `hyp bigquery`, the tables written through
Google's BigQuery client: datasets, schemas, row counts, a preview with nested records, histograms
(linear and log scale) with known counts, and bad input refused with the reason."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from services.console.app import create_app
from services.testing.hyp import HypProcess
from tests.services.console.conftest import console_settings

pytestmark = [pytest.mark.integration, pytest.mark.local_only("the console's views over the BigQuery API")]

PROJECT = "hyp-local"
VALUES = [0.5, 1, 2, 3, 10, 20, 30, 100, 200, 1000]


@pytest.fixture(scope="module")
def bigquery(tmp_path_factory):
    home = tmp_path_factory.mktemp("bigquery")
    env = {**os.environ, "HYP_WAREHOUSE_DIR": str(home / "warehouse"), "HYP_PROJECT": PROJECT}
    with HypProcess("bigquery", log_path=home / "bigquery.log", env=env).start(90) as server:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery as bq

        client = bq.Client(
            project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": server.url}
        )
        client.create_dataset("shop")
        schema = [
            bq.SchemaField("id", "INTEGER", mode="REQUIRED"),
            bq.SchemaField("purchase", "RECORD", fields=[bq.SchemaField("value", "FLOAT64")]),
            bq.SchemaField("tags", "STRING", mode="REPEATED"),
        ]
        client.create_table(bq.Table(f"{PROJECT}.shop.orders", schema=schema))
        rows = [{"id": i, "purchase": {"value": v}, "tags": ["a", str(i)]} for i, v in enumerate(VALUES)]
        rows.append({"id": 99, "purchase": {"value": -5.0}, "tags": []})
        assert client.insert_rows_json(f"{PROJECT}.shop.orders", rows) == []
        yield server.url, home / "warehouse"


@pytest.fixture(scope="module")
def console(bigquery):
    url, warehouse = bigquery
    settings = console_settings(
        HYP_CONSOLE_BIGQUERY_URL=url,
        HYP_PROJECT=PROJECT,
        HYP_WAREHOUSE_DIR=str(warehouse),
        HYP_CONSOLE_IDLE_REFRESH_S=600,
    )
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        yield client


def test_tables_with_schemas_and_row_counts(console):
    answer = console.get("/api/warehouse/tables")
    assert answer.status_code == 200, answer.text
    tables = {(t["dataset"], t["table"]): t for t in answer.json()["tables"]}
    orders = tables[("shop", "orders")]
    assert orders["rows"] == len(VALUES) + 1
    assert [f["name"] for f in orders["schema"]] == ["id", "purchase", "tags"]
    assert orders["schema"][1]["fields"][0]["name"] == "value"
    assert ("ecommerce_sink", "cloud_run") in tables  # the workshop's dataset is there from the start


def test_preview_decodes_records_and_arrays(console):
    answer = console.get("/api/warehouse/tables/shop/orders/preview", params={"rows": 3})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["columns"] == ["id", "purchase", "tags"] and body["total_rows"] == len(VALUES) + 1
    assert len(body["rows"]) == 3
    first = sorted(body["rows"], key=lambda r: int(r[0]))[0]
    assert first[1] == '{"value": "0.5"}' and first[2] == '["a", "0"]'  # the API's values are strings


def test_histogram_linear_and_log(console):
    linear = console.post(
        "/api/warehouse/histogram", json={"dataset": "shop", "table": "orders", "column": "purchase.value", "bins": 2}
    )
    assert linear.status_code == 200, linear.text
    body = linear.json()
    assert body["n"] == len(VALUES) + 1 and body["skipped"] == 0
    assert body["edges"][0] == -5.0 and body["edges"][-1] == 1000.0
    assert body["counts"] == [len(VALUES), 1]  # everything below 497.5, then 1000
    log = console.post(
        "/api/warehouse/histogram",
        json={"dataset": "shop", "table": "orders", "column": "purchase.value", "bins": 4, "log": True},
    ).json()
    assert log["skipped"] == 1 and log["n"] == len(VALUES)  # -5 has no logarithm
    assert log["edges"][0] == pytest.approx(0.5) and log["edges"][-1] == pytest.approx(1000)
    assert log["counts"] == [4, 2, 2, 2]  # decades -0.3..3 in 4: up to 3.3, 22, 149, then 1000


def test_bad_input_is_refused_with_the_reason(console):
    not_numeric = console.post(
        "/api/warehouse/histogram", json={"dataset": "shop", "table": "orders", "column": "tags"}
    )
    assert not_numeric.status_code == 400 and "BigQuery jobs.query" in not_numeric.json()["error"], not_numeric.text
    injected = console.post("/api/warehouse/histogram", json={"column": "value) FROM x; --"})
    assert injected.status_code == 422 and "body.column" in injected.json()["error"]
    missing = console.get("/api/warehouse/tables/shop/nothing/preview")
    assert missing.status_code == 404 and "nothing" in missing.json()["error"], missing.text
    assert console.get("/api/warehouse/tables/shop/no-dash/preview").status_code == 400


def test_api_rows_decode_to_plain_values():
    from services.console.routes.warehouse import decode_row

    fields = [
        {"name": "t", "type": "TIMESTAMP"},
        {"name": "r", "type": "RECORD", "fields": [{"name": "x", "type": "FLOAT"}]},
        {"name": "a", "type": "STRING", "mode": "REPEATED"},
    ]
    row = {"f": [{"v": "1795777946.5"}, {"v": {"f": [{"v": "1.5"}]}}, {"v": [{"v": "p"}, {"v": "q"}]}]}
    assert decode_row(row, fields) == {"t": "2026-11-27 11:12:26.500000+00:00", "r": {"x": "1.5"}, "a": ["p", "q"]}


def test_drift_view_compares_reference_and_recent_purchases_over_shared_bins(console, bigquery):
    from services.testing.hyp import run_hyp

    _, warehouse = bigquery
    env = {**os.environ, "HYP_PROJECT": PROJECT}
    done = run_hyp("loadgen", "--to", "parquet", "--out", str(warehouse), "--count", "3000", "--seed", "3", env=env)
    assert done.returncode == 0, done.stderr
    answer = console.get("/api/models/drift")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["statistics"] is None and "orchestrator" in body["orchestrator"]  # not running here: said so
    assert body["reference"] == "oldest 2000 purchases"
    assert 0 < body["rows"]["recent"] <= 500 and body["rows"]["recent"] <= body["rows"]["reference"] <= 2000
    for feature in ("tax", "shipping", "value"):
        d = body["features"][feature]
        assert len(d["edges"]) == 21 and len(d["reference"]) == len(d["recent"]) == 20
        assert sum(d["reference"]) == body["rows"]["reference"] and sum(d["recent"]) == body["rows"]["recent"]
