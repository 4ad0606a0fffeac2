"""insertId de-duplication across a kill -9 of `hyp bigquery`: a client that never got its answer retries the
batch against the restarted server, and no row is doubled (the window is kept on disk, with the rows)."""

from __future__ import annotations

import signal

import pytest
from google.cloud import bigquery

from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/streaming-data-into-bigquery"),
]

SF = bigquery.SchemaField


def _kill_9_and_restart(server) -> None:
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)
    server.start(60)


def _seqs(client, table: str) -> list[int]:
    return sorted(r["seq"] for r in client.list_rows(table))


@pytest.mark.parametrize("partitioned", [False, True], ids=["unpartitioned", "day-partitioned"])
def test_a_retried_batch_after_kill_9_is_not_doubled(client, dataset, bigquery_server, partitioned) -> None:
    table = bigquery.Table(f"{PROJECT}.{dataset}.retry", schema=[SF("ts", "TIMESTAMP"), SF("seq", "INTEGER")])
    if partitioned:
        table.time_partitioning = bigquery.TimePartitioning(field="ts")
    client.create_table(table)
    name = f"{PROJECT}.{dataset}.retry"
    days = ("2024-05-01", "2024-05-02")  # the batch spans two partitions: two files, each with its rows' ids
    batch = [{"ts": f"{days[i % 2]}T00:00:00Z", "seq": i} for i in range(10)]
    ids = [f"id-{i}" for i in range(10)]
    assert client.insert_rows_json(name, batch, row_ids=ids) == []
    _kill_9_and_restart(bigquery_server)  # as if the answer was lost: the client retries the same batch
    assert client.insert_rows_json(name, batch, row_ids=ids) == []
    assert _seqs(client, name) == list(range(10))
    more = [{"ts": "2024-05-03T00:00:00Z", "seq": 10 + i} for i in range(3)]  # new ids still go in
    assert client.insert_rows_json(name, [*batch[:2], *more], row_ids=[*ids[:2], "n0", "n1", "n2"]) == []
    assert _seqs(client, name) == list(range(13))


@pytest.mark.local_only("the workshop's tables are the warehouse's own folders")
def test_a_retried_batch_into_a_workshop_table_after_kill_9_is_not_doubled(client, bigquery_server) -> None:
    name = f"{PROJECT}.ecommerce_sink.pubsub_direct"
    before = client.get_table(name).num_rows
    rows = [
        {
            "subscription_name": "projects/p/subscriptions/s",
            "message_id": f"m{i}",
            "publish_time": "2024-05-01T00:00:00Z",
        }
        for i in range(5)
    ]
    ids = [f"msg-{i}" for i in range(5)]
    assert client.insert_rows_json(name, rows, row_ids=ids) == []
    _kill_9_and_restart(bigquery_server)
    assert client.insert_rows_json(name, rows, row_ids=ids) == []
    assert client.get_table(name).num_rows == before + 5
