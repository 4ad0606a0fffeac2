"""One query engine: `hyp sql`, the console's SQL box and `hyp bigquery`'s jobs run the same BigQuery SQL
through the same translator and table resolution (services/bigquery/engine.py), confined to the warehouse.

The stack's tables answer by every name BigQuery gives them (``cloud_run``, ``ecommerce_sink.cloud_run``,
```project.ecommerce_sink.cloud_run```); a dataset made through the API is found by the same engine; a table
the catalog serves in ``ecommerce_sink`` wins over the stack's own; anything but a query is refused by name.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.bigquery.catalog import Catalog
from services.bigquery.engine import BigQueryError, QueryTimeout, run_query
from services.console.app import create_app
from services.console.settings import ConsoleSettings
from services.testing.hyp import HypProcess, run_hyp
from services.warehouse import append
from tests.services.console.test_sql_confinement import console_env

pytestmark = pytest.mark.local_only("hyp sql and the console's SQL box are hyp-local's own; their SQL is BigQuery's")

PROJECT = "hyp-local"
# BigQuery SQL that DuckDB's own dialect would not take as it is (backticks, COUNTIF, SAFE_CAST, EXCEPT)
BIGQUERY_ONLY = (
    "SELECT COUNTIF(event = 'purchase') AS purchases, SAFE_CAST('x' AS INT64) AS bad, "
    "ARRAY_LENGTH(ARRAY_AGG(DISTINCT user_id)) AS users FROM `hyp-local.ecommerce_sink.cloud_run`"
)
ANSWER = {"purchases": 2, "bad": None, "users": 3}


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    root = tmp_path / "wh"
    events = [("purchase", "u1"), ("purchase", "u2"), ("view_item", "u3")]
    rows = [
        {"event_datetime": datetime(2026, 11, 22, 10, i), "event": e, "user_id": u, "tax": 1.5 * i, "source": "t"}
        for i, (e, u) in enumerate(events)
    ]
    append(root, "cloud_run", rows)
    return root


def test_the_stack_tables_answer_by_every_bigquery_name(warehouse: Path) -> None:
    for name in (
        "cloud_run",
        "ecommerce_sink.cloud_run",
        "`hyp-local.ecommerce_sink.cloud_run`",
        "`hyp-local`.ecommerce_sink.cloud_run",
    ):
        rows = run_query(warehouse, f"SELECT count(*) AS n FROM {name}", project=PROJECT).to_pylist()
        assert rows == [{"n": 3}], name
    assert run_query(warehouse, BIGQUERY_ONLY, project=PROJECT).to_pylist() == [ANSWER]
    empty = run_query(warehouse, "SELECT count(*) AS n FROM pubsub_direct", project=PROJECT)
    assert empty.to_pylist() == [{"n": 0}]


def test_a_dataset_made_through_the_api_is_found_by_the_same_engine(warehouse: Path) -> None:
    catalog = Catalog(warehouse)
    catalog.create_dataset(PROJECT, {"datasetReference": {"datasetId": "shop"}})
    fields = [{"name": "user_id", "type": "STRING"}, {"name": "tax", "type": "FLOAT"}]
    catalog.create_table(PROJECT, "shop", {"tableReference": {"tableId": "cloud_run"}, "schema": {"fields": fields}})
    rows = [{"json": {"user_id": "api", "tax": 9.0}}]
    catalog.insert_all(PROJECT, "shop", "cloud_run", rows, skip_invalid=False, ignore_unknown=False)
    answer = run_query(warehouse, "SELECT user_id, tax FROM shop.cloud_run", project=PROJECT)
    assert answer.to_pylist() == [{"user_id": "api", "tax": 9.0}]
    joined = "SELECT count(*) AS n FROM cloud_run JOIN `hyp-local.shop.cloud_run` AS api USING (user_id)"
    assert run_query(warehouse, joined, project=PROJECT).to_pylist() == [{"n": 0}]  # the stack's cloud_run is apart


def test_columns_are_named_as_bigquery_names_them_and_describe_lists_a_table(warehouse: Path) -> None:
    sql = "SELECT count(*), event, max(event_datetime) AS top, 1 + 1 FROM cloud_run GROUP BY event"
    answer = run_query(warehouse, sql, project=PROJECT)
    assert answer.column_names == ["f0_", "event", "top", "f1_"]
    described = run_query(warehouse, "DESCRIBE ecommerce_sink.cloud_run", project=PROJECT).to_pylist()
    assert {"column_name": "user_id", "data_type": "STRING"}.items() <= described[2].items(), described
    assert [r["column_name"] for r in described][:3] == ["event_datetime", "event", "user_id"]


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "/etc/passwd"),
        ("SELECT * FROM cloud_run, read_text('/etc/hostname')", "/etc/hostname"),
        ("UPDATE cloud_run SET tax = 0 WHERE true", "UPDATE"),
        ("DELETE FROM cloud_run WHERE true", "DELETE"),
        ("SELECT 1; DROP TABLE cloud_run", "DROP"),
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/x.parquet'", "EXPLAIN COPY"),
        ("SELECT * FROM missing_table", "ecommerce_sink.missing_table"),
        ("SELECT FROM WHERE", "Syntax error"),
    ],
)
def test_anything_but_a_query_or_outside_the_warehouse_is_refused_by_name(
    warehouse: Path, sql: str, named: str
) -> None:
    with pytest.raises(BigQueryError) as caught:
        run_query(warehouse, sql, project=PROJECT)
    assert named in caught.value.message and "\n" not in caught.value.message, caught.value.message
    assert run_query(warehouse, "SELECT count(*) AS n FROM cloud_run", project=PROJECT).to_pylist() == [{"n": 3}]


def test_a_runaway_query_is_stopped(warehouse: Path) -> None:
    runaway = "SELECT count(*) FROM " + ", ".join(f"cloud_run t{i}" for i in range(24))  # 3**24 rows
    with pytest.raises(QueryTimeout, match=r"no answer within 0\.5 s"):
        run_query(warehouse, runaway, project=PROJECT, timeout_s=0.5)


def test_the_console_box_speaks_bigquery_sql(warehouse: Path) -> None:
    settings = ConsoleSettings(**console_env(warehouse))  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as client:
        answer = client.post("/api/sql", json={"sql": BIGQUERY_ONLY})
        assert answer.status_code == 200, answer.text
        assert answer.json()["columns"] == list(ANSWER) and answer.json()["rows"] == [list(ANSWER.values())]
        refused = client.post("/api/sql", json={"sql": "SELECT * FROM read_csv('/etc/passwd')"})
        assert refused.status_code == 400 and "/etc/passwd" in refused.json()["error"], refused.text
        dml = client.post("/api/sql", json={"sql": "DELETE FROM cloud_run WHERE true"})
        assert dml.status_code == 400 and "DELETE" in dml.json()["error"], dml.text


@pytest.mark.integration
def test_hyp_sql_speaks_bigquery_sql_and_stays_confined(warehouse: Path) -> None:
    env = {**os.environ, "HYP_WAREHOUSE_DIR": str(warehouse), "HYP_PROJECT": PROJECT}
    done = run_hyp("sql", "--format", "csv", BIGQUERY_ONLY, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["purchases,bad,users", "2,,3"]
    table = run_hyp("sql", "SELECT event, count(*) AS n FROM cloud_run GROUP BY event ORDER BY event", env=env)
    assert table.returncode == 0 and table.stdout.splitlines()[-1] == "2 rows", table.stdout  # the table format
    refused = run_hyp("sql", "SELECT * FROM read_csv('/etc/passwd')", env=env, timeout=60)
    assert refused.returncode == 2 and refused.stdout == "", refused
    assert refused.stderr.startswith("hyp sql: ") and "/etc/passwd" in refused.stderr and "root:" not in refused.stderr


@pytest.mark.integration
def test_hyp_sql_the_console_and_the_bigquery_api_give_one_answer(warehouse: Path, tmp_path: Path) -> None:
    """The same query through Google's client against `hyp bigquery`, through `hyp sql` and through the
    console's box, over the same warehouse: the same rows."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    env = {**os.environ, "HYP_WAREHOUSE_DIR": str(warehouse), "HYP_PROJECT": PROJECT}
    with HypProcess("bigquery", log_path=tmp_path / "bigquery.log", env=env).start(60) as server:
        client = bigquery.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": server.url},
        )
        job_config = bigquery.QueryJobConfig(default_dataset=f"{PROJECT}.ecommerce_sink")
        api = [dict(row) for row in client.query_and_wait(BIGQUERY_ONLY, job_config=job_config)]
    done = run_hyp("sql", "--format", "json", BIGQUERY_ONLY, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    settings = ConsoleSettings(**console_env(warehouse))  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as console:
        box = console.post("/api/sql", json={"sql": BIGQUERY_ONLY}).json()
    assert api == [ANSWER]
    assert done.stdout.strip() == '{"purchases": 2, "bad": null, "users": 3}'
    assert [dict(zip(box["columns"], row, strict=True)) for row in box["rows"]] == [ANSWER]
