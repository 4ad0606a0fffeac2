"""UPDATE, DELETE and MERGE through Google's client against `hyp bigquery` as a real process: the rows
change, ``num_dml_affected_rows`` and ``dml_stats`` say what BigQuery says, BigQuery's restrictions get
its 400 and change nothing; a kill -9 at any step of a statement leaves each row exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import bigquery

from services.testing.hyp import REPO
from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/standard-sql/dml-syntax"),
]

SF = bigquery.SchemaField
SCHEMA = [SF("id", "INTEGER", mode="REQUIRED"), SF("day", "DATE"), SF("amount", "FLOAT"), SF("status", "STRING")]


@pytest.fixture
def orders(client, dataset) -> str:
    """A DAY-partitioned table of 9 orders over 3 days (ids 0-8, amount = id) and a source of 2 updates."""
    table = bigquery.Table(f"{PROJECT}.{dataset}.orders", schema=SCHEMA)
    table.time_partitioning = bigquery.TimePartitioning(field="day")
    client.create_table(table)
    rows = [{"id": i, "day": f"2026-11-0{1 + i % 3}", "amount": float(i), "status": "new"} for i in range(9)]
    assert client.insert_rows_json(f"{dataset}.orders", rows) == []
    client.create_table(
        bigquery.Table(f"{PROJECT}.{dataset}.fixes", schema=[SF("id", "INTEGER"), SF("amount", "FLOAT")])
    )
    assert client.insert_rows_json(f"{dataset}.fixes", [{"id": 1, "amount": 100.0}, {"id": 42, "amount": 42.0}]) == []
    return f"{dataset}.orders"


def rows(client, table: str) -> list[tuple]:
    result = client.query_and_wait(f"SELECT id, day, amount, status FROM {table} ORDER BY id")
    return [(r["id"], str(r["day"]), r["amount"], r["status"]) for r in result]


def run(client, sql: str) -> bigquery.QueryJob:
    job = client.query(sql)
    job.result()
    return job


def test_update_changes_the_rows_and_counts_them(client, orders: str) -> None:
    job = run(client, f"UPDATE {orders} SET status = 'paid', amount = amount * 2 WHERE id < 3")
    assert job.statement_type == "UPDATE" and job.num_dml_affected_rows == 3
    assert job.dml_stats is not None and job.dml_stats.updated_row_count == 3
    got = rows(client, orders)
    assert got[:4] == [(0, "2026-11-01", 0.0, "paid"), (1, "2026-11-02", 2.0, "paid"), (2, "2026-11-03", 4.0, "paid"),
                       (3, "2026-11-01", 3.0, "new")]  # fmt: skip
    assert len(got) == 9
    nothing = run(client, f"UPDATE {orders} SET status = 'x' WHERE id > 100")
    assert nothing.num_dml_affected_rows == 0 and len(rows(client, orders)) == 9


def test_update_from_another_table(client, orders: str) -> None:
    dataset = orders.split(".")[0]
    job = run(client, f"UPDATE {orders} o SET o.amount = f.amount FROM {dataset}.fixes f WHERE o.id = f.id")
    assert job.num_dml_affected_rows == 1
    assert [r for r in rows(client, orders) if r[0] == 1] == [(1, "2026-11-02", 100.0, "new")]


def test_dml_with_query_parameters(client, orders: str) -> None:
    dataset = orders.split(".")[0]
    named = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("status", "STRING", "held"),
            bigquery.ArrayQueryParameter("ids", "INT64", [4, 5]),
        ]
    )
    job = client.query(f"UPDATE {orders} SET status = @status WHERE id IN UNNEST(@ids)", job_config=named)
    job.result()
    assert job.num_dml_affected_rows == 2
    assert {r[0] for r in rows(client, orders) if r[3] == "held"} == {4, 5}
    positional = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter(None, "FLOAT64", 0.5)])
    job = client.query(
        f"UPDATE {orders} o SET amount = f.amount * ? FROM {dataset}.fixes f WHERE o.id = f.id", job_config=positional
    )
    job.result()
    assert job.num_dml_affected_rows == 1 and [r[2] for r in rows(client, orders) if r[0] == 1] == [50.0]
    deleted = client.query(
        f"DELETE {orders} WHERE status = @status",
        job_config=bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("status", "STRING", "held")]
        ),
    )
    deleted.result()
    assert deleted.num_dml_affected_rows == 2 and len(rows(client, orders)) == 7


def test_delete_removes_the_rows(client, orders: str) -> None:
    job = run(client, f"DELETE FROM {orders} WHERE day = '2026-11-01'")
    assert job.statement_type == "DELETE" and job.num_dml_affected_rows == 3
    assert job.dml_stats.deleted_row_count == 3
    assert [r[0] for r in rows(client, orders)] == [1, 2, 4, 5, 7, 8]
    everything = run(client, f"DELETE {orders} WHERE true")  # FROM is optional, as in BigQuery
    assert everything.num_dml_affected_rows == 6 and rows(client, orders) == []
    assert client.get_table(orders).num_rows == 0


def test_merge_updates_inserts_and_deletes(client, orders: str) -> None:
    dataset = orders.split(".")[0]
    job = run(
        client,
        f"""MERGE {orders} T USING {dataset}.fixes S ON T.id = S.id
            WHEN MATCHED THEN UPDATE SET amount = S.amount, status = 'fixed'
            WHEN NOT MATCHED THEN INSERT (id, day, amount, status) VALUES (S.id, DATE '2026-11-05', S.amount, 'new')
            WHEN NOT MATCHED BY SOURCE AND T.id > 6 THEN DELETE""",
    )
    assert job.statement_type == "MERGE" and job.num_dml_affected_rows == 4  # 1 updated, 1 inserted, 2 deleted
    stats = job.dml_stats
    assert (stats.updated_row_count, stats.inserted_row_count, stats.deleted_row_count) == (1, 1, 2)
    got = rows(client, orders)
    assert [r[0] for r in got] == [0, 1, 2, 3, 4, 5, 6, 42]
    assert got[1] == (1, "2026-11-02", 100.0, "fixed") and got[-1] == (42, "2026-11-05", 42.0, "new")
    values = run(client, f"MERGE {orders} T USING (SELECT 7 AS id) S ON T.id = S.id "
                         "WHEN NOT MATCHED THEN INSERT VALUES (S.id, DATE '2026-11-01', 7.5, 'again')")  # fmt: skip
    assert values.num_dml_affected_rows == 1 and (7, "2026-11-01", 7.5, "again") in rows(client, orders)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("UPDATE {t} SET status = 'x'", "must have a WHERE clause"),
        ("DELETE FROM {t}", "must have a WHERE clause"),
        ("UPDATE {t} o SET amount = 0 FROM (SELECT 1 AS id UNION ALL SELECT 1) s WHERE o.id = s.id",
         "must match at most one source row"),
        ("MERGE {t} T USING (SELECT 1 AS id UNION ALL SELECT 1) S ON T.id = S.id WHEN MATCHED THEN DELETE",
         "must match at most one source row"),
        ("UPDATE {t} SET id = NULL WHERE id = 0", "REQUIRED"),
        ("UPDATE {t} SET amount = 'lots' WHERE id = 0", "lots"),
        ("UPDATE {t} SET nope = 1 WHERE id = 0", "nope"),
        ("UPDATE {d}.missing SET a = 1 WHERE true", "Not found"),
        ("UPDATE {d}.v SET amount = 0 WHERE true", "view"),
        ("UPDATE ecommerce_sink.cloud_run SET user_id = 'x' WHERE true", "API tables only"),
    ],
)  # fmt: skip
def test_what_bigquery_refuses_gets_its_error_and_changes_nothing(
    client, orders: str, template: str, message: str
) -> None:
    dataset = orders.split(".")[0]
    client.create_table(_view(dataset, orders))
    before = rows(client, orders)
    with pytest.raises((exceptions.BadRequest, exceptions.NotFound), match=message):
        run(client, template.format(t=orders, d=dataset))
    assert rows(client, orders) == before


def _view(dataset: str, orders: str) -> bigquery.Table:
    view = bigquery.Table(f"{PROJECT}.{dataset}.v")
    view.view_query = f"SELECT * FROM {orders}"
    return view


CRASH = textwrap.dedent(
    """
    import os, signal, sys
    from services.bigquery import dml
    from services.bigquery.catalog import Catalog
    from services.bigquery.jobs import Jobs

    def step(name):
        if name == sys.argv[2]:
            os.kill(os.getpid(), signal.SIGKILL)

    dml.on_step = step
    job = Jobs(Catalog(sys.argv[1])).insert(sys.argv[3], {"configuration": {"query": {"query": sys.argv[4]}}})
    print(job.error)
    """
)


@pytest.mark.local_only("a kill -9 in the middle of a DML statement, at each of its steps")
@pytest.mark.parametrize("step", ["loaded", "temp_written", "committed", "inserted", "never"])
def test_a_kill_at_any_step_leaves_each_row_once(client, orders: str, warehouse_dir: Path, step: str) -> None:
    dataset = orders.split(".")[0]
    merge = (
        f"MERGE {orders} T USING {dataset}.fixes S ON T.id = S.id "
        "WHEN MATCHED THEN UPDATE SET status = 'fixed' "
        "WHEN NOT MATCHED THEN INSERT (id, day, amount, status) VALUES (S.id, DATE '2026-11-02', S.amount, 'new') "
        "WHEN NOT MATCHED BY SOURCE AND T.id = 4 THEN DELETE"
    )  # touches partition 2026-11-02 only (ids 1, 4, 7), inserts 42 into it
    done = subprocess.run(
        [sys.executable, "-c", CRASH, str(warehouse_dir), step, PROJECT, merge],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    killed = done.returncode == -9
    assert killed == (step != "never"), done
    ids = [r[0] for r in rows(client, orders)]
    assert len(ids) == len(set(ids)), ids  # each row once
    status = {r[0]: r[3] for r in rows(client, orders)}
    if step in ("loaded", "temp_written"):  # before the commit: as it was
        assert sorted(ids) == list(range(9)) and status[1] == "new"
    elif step in ("committed", "inserted"):  # the rewrite committed; the insert only once it ran
        assert 4 not in ids and status[1] == "fixed" and (42 in ids) == (step == "inserted")
    else:
        assert 4 not in ids and status[1] == "fixed" and 42 in ids
