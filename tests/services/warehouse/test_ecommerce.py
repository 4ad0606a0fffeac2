"""The workshop's nested ``ecommerce`` record in the event tables: derived by the writer from the flat
columns (dict rows and Arrow tables alike), the same Arrow type hyp bigquery makes of the workshop schema,
and older files without it still read (as null) and are filled in when compaction rewrites them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from services.bigquery.schema import arrow_schema
from services.bigquery.workshop import fields
from services.common.events import event_row
from services.testing import events
from services.warehouse import append
from services.warehouse.compaction import Compactor
from services.warehouse.ecommerce import ECOMMERCE
from services.warehouse.query import files, query
from services.warehouse.tables import DETECTOR_TABLE, TABLES
from services.warehouse.writer import to_arrow


def test_the_stored_record_is_the_workshop_schemas_type() -> None:
    workshop = arrow_schema(fields("cloud_run"))
    assert workshop.field("ecommerce").type == ECOMMERCE
    for name in ("cloud_run", DETECTOR_TABLE):
        stored = TABLES[name].schema
        assert stored.field("ecommerce").type == ECOMMERCE and stored.field("weekday").type == pa.string()


def test_writer_nests_purchases_and_other_events() -> None:
    bought = events.purchase(40.0, tax=8.4, shipping=3.0, transaction_id="T9")
    bought["ecommerce"]["purchase"]["items"] = [
        {"item_id": "12345", "item_name": "mug", "price": 20.0, "quantity": 2},
        {"item_id": "SKU-7", "item_price": 0.5},  # not an INTEGER id: null, as the workshop schema can hold
    ]
    data = to_arrow("cloud_run", [event_row(bought), event_row(events.view_item(price=9.5))])
    first, second = data.column("ecommerce").to_pylist()
    assert first["items"] == []
    assert {k: first["purchase"][k] for k in ("transaction_id", "tax", "shipping", "value", "currency")} == {
        "transaction_id": "T9", "tax": 8.4, "shipping": 3.0, "value": 40.0, "currency": "EUR"
    }  # fmt: skip
    ids = [(i["item_id"], i["item_price"], i["quantity"]) for i in first["purchase"]["items"]]
    assert ids == [(12345, 20.0, 2), (None, 0.5, None)]
    assert second["purchase"] is None and [i["price"] for i in second["items"]] == [9.5]
    assert data.column("weekday").to_pylist() == ["Sunday", "Sunday"]  # 2026-11-22


def test_arrow_tables_and_odd_item_json_are_nested_too() -> None:
    t = pa.table(
        {
            "event_datetime": pa.array([datetime(2026, 11, 23, 8)] * 3, pa.timestamp("us")),
            "event": ["purchase", "add_to_cart", "purchase"],
            "value": [1.0, None, 2.0],
            "items": pa.array([json.dumps([{"item_id": 5, "price": "1.5"}]), "not json", None], pa.large_string()),
        }
    )  # large_string, as a table from pandas has
    nested = to_arrow("cloud_run", t).column("ecommerce").to_pylist()
    assert [(i["item_id"], i["item_price"]) for i in nested[0]["purchase"]["items"]] == [(5, 1.5)]
    assert nested[1] == {"items": [], "purchase": None} and nested[2]["purchase"]["items"] == []


def test_nested_fields_query_in_duckdb_and_old_files_read_as_null(tmp_path: Path) -> None:
    old = pa.table({"event_datetime": pa.array([datetime(2026, 11, 22, 9)], pa.timestamp("us")), "event": ["x"]})
    folder = tmp_path / "cloud_run" / "date=2026-11-22"
    folder.mkdir(parents=True)
    for k in range(2):  # written before the record existed
        pq.write_table(old, folder / f"part-20261122T09000000000{k}-old{k}.parquet")
    append(tmp_path, "cloud_run", [event_row(events.purchase(10.0, tax=2.1))])
    rows = query(tmp_path, "SELECT event, ecommerce.purchase.tax AS tax FROM cloud_run ORDER BY event").to_pylist()
    assert rows == [{"event": "purchase", "tax": 2.1}, {"event": "x", "tax": None}, {"event": "x", "tax": None}]
    assert Compactor(tmp_path, grace_s=0, min_files=2, quiet_s=0).run_once()["files_merged"] == 2
    assert all(pq.read_schema(f).field("ecommerce").type == ECOMMERCE for f in files(tmp_path, "cloud_run"))
    counted = query(tmp_path, "SELECT count(*) AS n FROM cloud_run WHERE ecommerce IS NOT NULL").to_pylist()
    assert counted == [{"n": 3}]  # the merge filled the old rows in
