"""Compaction covers the tables made through ``hyp bigquery``'s API: many small inserts end as few files,
every row read exactly once through Google's client before, during and after, a column added later included."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.testing.bigquery import bigquery_client
from services.testing.hyp import HypProcess
from services.warehouse.compaction import API_ROOT, Compactor
from services.warehouse.live import live_files

pytestmark = [
    pytest.mark.integration,
    pytest.mark.local_only("hyp-local keeps API tables as Parquet files and merges them online"),
]

PROJECT = "compaction-project"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HypProcess]:
    home = tmp_path_factory.mktemp("bq-compaction")
    env = dict(os.environ, HYP_WAREHOUSE_DIR=str(home / "warehouse"), HYP_PROJECT=PROJECT)
    with HypProcess("bigquery", log_path=home / "bigquery.log", env=env).start(60) as process:
        yield process


def _folder(dataset: str, table: str) -> str:
    return f"{API_ROOT}/{PROJECT}/{dataset}/tables/{table}"


def test_api_table_files_are_merged_and_rows_stay_exact(server: HypProcess) -> None:
    from google.cloud import bigquery

    assert server.env is not None
    warehouse = Path(server.env["HYP_WAREHOUSE_DIR"])
    client = bigquery_client(server.url, PROJECT)
    dataset = f"ds_{uuid.uuid4().hex[:8]}"
    client.create_dataset(dataset)
    table_id = f"{PROJECT}.{dataset}.events"
    table = bigquery.Table(
        table_id,
        schema=[bigquery.SchemaField("event_datetime", "TIMESTAMP"), bigquery.SchemaField("n", "INT64")],
    )
    table.time_partitioning = bigquery.TimePartitioning(field="event_datetime")
    client.create_table(table)
    for k in range(12):  # one file per insert
        rows = [{"event_datetime": "2026-11-22 10:00:00", "n": k * 10 + i} for i in range(10)]
        assert client.insert_rows_json(table_id, rows) == []
    # a column added later: the older files lack it
    table = client.get_table(table_id)
    table.schema = [*table.schema, bigquery.SchemaField("note", "STRING")]
    client.update_table(table, ["schema"])
    for k in range(12, 16):
        rows = [{"event_datetime": "2026-11-22 11:00:00", "n": k * 10 + i, "note": "late"} for i in range(10)]
        assert client.insert_rows_json(table_id, rows) == []
    folder = _folder(dataset, "events")
    assert len(live_files(warehouse, folder)) == 16

    compactor = Compactor(warehouse, grace_s=0, min_files=4, quiet_s=0)
    result = compactor.run_once()
    compactor.stop()
    assert result["files_merged"] >= 16 and len(live_files(warehouse, folder)) == 1

    (row,) = client.query_and_wait(
        f"SELECT count(*) AS n, count(DISTINCT n) AS d, countif(note = 'late') AS late FROM `{table_id}`"
    )
    assert (row["n"], row["d"], row["late"]) == (160, 160, 40)
    listed = list(client.list_rows(table_id))
    assert len(listed) == 160 and sum(1 for r in listed if r["note"] is None) == 120
    assert client.get_table(table_id).num_rows == 160
    # inserts after the merge still land and read once
    assert client.insert_rows_json(table_id, [{"event_datetime": "2026-11-22 12:00:00", "n": 999}]) == []
    (row,) = client.query_and_wait(f"SELECT count(*) AS n FROM `{table_id}`")
    assert row["n"] == 161


def test_a_partition_is_left_alone_while_a_dml_statement_holds_its_table(server: HypProcess) -> None:
    """The table lock DML takes (services/bigquery/dml.py): a merge never covers files a statement is rewriting."""
    import fcntl

    from google.cloud import bigquery

    from services.warehouse.compaction import TABLE_LOCK_NAME

    assert server.env is not None
    warehouse = Path(server.env["HYP_WAREHOUSE_DIR"])
    client = bigquery_client(server.url, PROJECT)
    dataset = f"ds_{uuid.uuid4().hex[:8]}"
    client.create_dataset(dataset)
    table_id = f"{PROJECT}.{dataset}.locked"
    client.create_table(bigquery.Table(table_id, schema=[bigquery.SchemaField("n", "INT64")]))
    for k in range(6):
        assert client.insert_rows_json(table_id, [{"n": k}]) == []
    folder = _folder(dataset, "locked")
    compactor = Compactor(warehouse, grace_s=0, min_files=2, quiet_s=0)
    fd = os.open(warehouse / folder / TABLE_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a DML statement holds from listing to commit
        held = compactor.run_once()
        assert held["dml_busy"] >= 1 and len(live_files(warehouse, folder)) == 6
    finally:
        os.close(fd)
    assert compactor.run_once()["dml_busy"] == 0 and len(live_files(warehouse, folder)) == 1
    compactor.stop()
    (row,) = client.query_and_wait(f"SELECT count(*) AS n, sum(n) AS s FROM `{table_id}`")
    assert (row["n"], row["s"]) == (6, 15)
