"""tabledata.insertAll and tabledata.list through Google's client: per-row insertErrors, skipInvalidRows,
ignoreUnknownValues, insertId de-duplication, types, and rows that survive a kill -9 of the server."""

from __future__ import annotations

import datetime as dt
import signal
from decimal import Decimal

import pytest
from google.api_core import exceptions
from google.cloud import bigquery

from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/rest/v2/tabledata/insertAll"),
]

SF = bigquery.SchemaField
SCHEMA = [
    SF("event_datetime", "TIMESTAMP", mode="REQUIRED"),
    SF("user_id", "STRING"),
    SF("amount", "NUMERIC"),
    SF("day", "DATE"),
    SF("payload", "JSON"),
    SF("tags", "STRING", mode="REPEATED"),
    SF(
        "ecommerce",
        "RECORD",
        fields=[
            SF("items", "RECORD", mode="REPEATED", fields=[SF("item_id", "STRING"), SF("price", "FLOAT")]),
            SF("purchase", "RECORD", fields=[SF("tax", "FLOAT"), SF("transaction_id", "STRING")]),
        ],
    ),
]

ROW = {
    "event_datetime": "2024-03-01T10:00:00.250000Z",
    "user_id": "u1",
    "amount": "12.345",
    "day": "2024-03-01",
    "payload": {"k": [1, 2]},
    "tags": ["a", "b"],
    "ecommerce": {
        "items": [{"item_id": "i1", "price": 2.5}, {"item_id": "i2", "price": 3.0}],
        "purchase": {"tax": 1.25, "transaction_id": "T1"},
    },
}


@pytest.fixture
def table(client, dataset) -> str:
    table = bigquery.Table(f"{PROJECT}.{dataset}.events", schema=SCHEMA)
    table.time_partitioning = bigquery.TimePartitioning(field="event_datetime")
    client.create_table(table)
    return f"{PROJECT}.{dataset}.events"


def test_rows_round_trip_with_their_types(client, table) -> None:
    assert client.insert_rows_json(table, [ROW, ROW | {"user_id": None, "tags": [], "ecommerce": None}]) == []
    rows = sorted(client.list_rows(table), key=lambda r: r["user_id"] or "")
    assert len(rows) == 2 and client.get_table(table).num_rows == 2
    empty, full = rows
    assert full["event_datetime"] == dt.datetime(2024, 3, 1, 10, 0, 0, 250000, tzinfo=dt.UTC)
    assert full["amount"] == Decimal("12.345") and full["day"] == dt.date(2024, 3, 1)
    assert full["payload"] == {"k": [1, 2]} and full["tags"] == ["a", "b"]
    assert full["ecommerce"]["purchase"] == {"tax": 1.25, "transaction_id": "T1"}
    assert [i["item_id"] for i in full["ecommerce"]["items"]] == ["i1", "i2"]
    assert empty["user_id"] is None and empty["tags"] == [] and empty["ecommerce"] is None


def test_insert_rows_with_python_values(client, table) -> None:
    """insert_rows (the client converts datetimes, Decimals and dates itself) lands the same values."""
    tbl = client.get_table(table)
    row = {
        "event_datetime": dt.datetime(2024, 3, 2, 8, 30, tzinfo=dt.UTC),
        "amount": Decimal("0.5"),
        "day": dt.date(2024, 3, 2),
    }
    assert client.insert_rows(tbl, [row]) == []
    (got,) = list(client.list_rows(table))
    assert got["event_datetime"] == row["event_datetime"] and got["amount"] == Decimal("0.5")


def test_invalid_row_stops_the_request(client, table) -> None:
    errors = client.insert_rows_json(table, [ROW, {"user_id": "no time"}, ROW | {"bogus": 1}])
    assert [e["index"] for e in errors] == [0, 1, 2]
    assert errors[0]["errors"][0]["reason"] == "stopped"
    assert errors[1]["errors"][0] == {
        "reason": "invalid", "location": "event_datetime", "debugInfo": "",
        "message": "Missing required field: event_datetime.",
    }  # fmt: skip
    assert errors[2]["errors"][0]["location"] == "bogus" and "no such field" in errors[2]["errors"][0]["message"]
    assert client.get_table(table).num_rows == 0


def test_skip_invalid_rows_keeps_the_valid_ones(client, table) -> None:
    bad = [
        ROW | {"amount": "not a number"},
        ROW | {"tags": "not a list"},
        ROW | {"ecommerce": {"items": [{"price": "x"}]}},
    ]
    errors = client.insert_rows_json(table, [ROW, *bad], skip_invalid_rows=True)
    assert [e["index"] for e in errors] == [1, 2, 3]
    assert [e["errors"][0]["location"] for e in errors] == ["amount", "tags", "ecommerce.items.price"]
    assert all(e["errors"][0]["reason"] == "invalid" for e in errors)
    assert client.get_table(table).num_rows == 1


def test_ignore_unknown_values(client, table) -> None:
    row = ROW | {"extra": 1, "ecommerce": ROW["ecommerce"] | {"nested_extra": True}}
    assert client.insert_rows_json(table, [row], ignore_unknown_values=True) == []
    (got,) = list(client.list_rows(table))
    assert "extra" not in dict(got.items()) and got["user_id"] == "u1"


def test_insert_id_deduplicates(client, table) -> None:
    assert client.insert_rows_json(table, [ROW, ROW], row_ids=["same", "other"]) == []
    assert client.insert_rows_json(table, [ROW, ROW | {"user_id": "u2"}], row_ids=["same", "new"]) == []
    assert client.insert_rows_json(table, [ROW, ROW], row_ids=["twice", "twice"]) == []
    assert client.insert_rows_json(table, [ROW, ROW], row_ids=[None, None]) == []  # no ids: no de-duplication
    assert client.get_table(table).num_rows == 6


def test_unknown_table_and_oversized_request(client, table, dataset) -> None:
    with pytest.raises(exceptions.NotFound, match="Table"):
        client.insert_rows_json(f"{PROJECT}.{dataset}.missing", [ROW])
    huge = [ROW | {"user_id": "x" * 1_000_000} for _ in range(11)]  # over the 10 MB request limit
    with pytest.raises(exceptions.BadRequest, match="payload size exceeds"):
        client.insert_rows_json(table, huge)
    assert client.get_table(table).num_rows == 0


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/rest/v2/tabledata/list")
def test_list_rows_pages_and_selected_fields(client, table) -> None:
    rows = [ROW | {"user_id": f"u{i:03}"} for i in range(25)]
    assert client.insert_rows_json(table, rows) == []
    pages = list(client.list_rows(table, page_size=10).pages)
    assert [p.num_items for p in pages] == [10, 10, 5]
    picked = list(client.list_rows(table, selected_fields=[SF("user_id", "STRING")], start_index=20))
    assert len(picked) == 5 and all(list(r.keys()) == ["user_id"] for r in picked)
    arrow = client.list_rows(table).to_arrow(create_bqstorage_client=False)
    assert arrow.num_rows == 25 and set(arrow.column("user_id").to_pylist()) == {f"u{i:03}" for i in range(25)}


@pytest.mark.local_only("rows live as Parquet files under the warehouse folder and survive a kill -9 of hyp bigquery")
def test_committed_rows_survive_kill_9(client, table, bigquery_server, warehouse_dir) -> None:
    assert client.insert_rows_json(table, [ROW] * 3) == []
    assert bigquery_server.process is not None
    bigquery_server.process.send_signal(signal.SIGKILL)
    bigquery_server.process.wait(timeout=30)
    bigquery_server.start(60)
    assert client.get_table(table).num_rows == 3
    files = list((warehouse_dir / "_bigquery").rglob("*.parquet"))
    assert files and all(not f.name.startswith(".") for f in files)
    assert any("date=2024-03-01" in str(f) for f in files)  # DAY partitions by event_datetime


def test_concurrent_writers_lose_nothing(client, table) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def write(worker: int) -> None:
        for request in range(10):
            rows = [ROW | {"user_id": f"w{worker}-{request}-{i}"} for i in range(50)]
            assert client.insert_rows_json(table, rows) == []

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    assert client.get_table(table).num_rows == 2000
    (row,) = client.query_and_wait(f"SELECT COUNT(DISTINCT user_id) AS n FROM `{table}`")
    assert row["n"] == 2000
