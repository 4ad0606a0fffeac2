"""The workshop's dataset ``ecommerce_sink`` through Google's client: the stack's warehouse tables in the
workshop's schema, its training query verbatim (project id aside), and ``insert_rows_json`` of the workshop's
Cloud Run service landing in the very table the processor writes."""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path

import pytest
from google.api_core import exceptions

from services.common.events import event_row
from services.testing import events
from services.warehouse import append
from services.warehouse.query import files, query
from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/nested-repeated"),
]

DATASET = "ecommerce_sink"
CLOUD_RUN = f"{PROJECT}.{DATASET}.cloud_run"

# the workshop's training query (02_activate/22_solution/kf_pipe.py), its SELECT verbatim but the project id
TRAINING_QUERY = f"""
                  SELECT
                    ecommerce.purchase.tax AS tax,
                    ecommerce.purchase.shipping AS shipping,
                    ecommerce.purchase.value AS value
                  FROM `{PROJECT}.ecommerce_sink.cloud_run` 
                  WHERE event='purchase'
                ;
"""  # noqa: W291 (the workshop's own trailing space)


def _workshop_purchase(user: str, value: float) -> dict:
    """A purchase as the workshop's Cloud Run service inserts it: its data layer plus ``weekday``."""
    return {
        "event_datetime": "2026-11-23 20:59:59",
        "event": "purchase",
        "user_id": user,
        "client_id": "CID00003",
        "page": "/checkout",
        "page_previous": "/order-confirmation",
        "weekday": "Monday",
        "ecommerce": {
            "purchase": {
                "transaction_id": f"T-{user}",
                "affiliation": "Online Store",
                "value": value,
                "tax": 4.9,
                "shipping": 5.99,
                "currency": "EUR",
                "coupon": "SUMMER_SALE",
                "items": [
                    {"item_name": "Shirt", "item_id": "12345", "item_price": 15.25, "quantity": 1, "item_coupon": ""},
                    {"item_name": "Cap", "item_id": "67890", "item_price": 33.75, "quantity": 2},
                ],
            }
        },
    }


def _processor_rows(warehouse: Path, *evts: dict) -> None:
    """What the processor commits: flat event rows through the warehouse's writer."""
    append(warehouse, "cloud_run", [event_row(e) | {"source": "processor"} for e in evts])


def test_dataset_and_tables_in_the_workshop_schema(client) -> None:
    assert DATASET in {d.dataset_id for d in client.list_datasets()}
    assert client.get_dataset(DATASET).location == "europe-west1"
    names = {t.table_id for t in client.list_tables(DATASET)}
    assert {"cloud_run", "dataflow", "cloud_run_anomaly", "dataflow_anomaly", "pubsub_direct"} <= names
    table = client.get_table(CLOUD_RUN)
    top = [(f.name, f.field_type, f.mode) for f in table.schema]
    assert top == [
        ("event_datetime", "TIMESTAMP", "NULLABLE"),
        ("event", "STRING", "REQUIRED"),
        ("user_id", "STRING", "REQUIRED"),
        ("client_id", "STRING", "NULLABLE"),
        ("page", "STRING", "NULLABLE"),
        ("page_previous", "STRING", "NULLABLE"),
        ("weekday", "STRING", "NULLABLE"),
        ("ecommerce", "RECORD", "NULLABLE"),
    ]
    items, purchase = table.schema[-1].fields
    assert (items.name, items.mode, purchase.name) == ("items", "REPEATED", "purchase")
    assert [f.name for f in purchase.fields] == [
        "items", "coupon", "tax", "shipping", "value", "affiliation", "currency", "transaction_id"
    ]  # fmt: skip
    assert {f.name: f.field_type for f in purchase.fields[0].fields}["item_id"] == "INTEGER"
    assert table.time_partitioning.type_ == "DAY" and table.time_partitioning.field == "event_datetime"
    anomaly = {f.name: f.field_type for f in client.get_table(f"{PROJECT}.{DATASET}.cloud_run_anomaly").schema}
    assert {"tax": "FLOAT", "shipping": "FLOAT", "value": "FLOAT", "anomaly": "BOOLEAN"}.items() <= anomaly.items()
    detector = client.get_table(f"{PROJECT}.{DATASET}.dataflow_anomaly")  # the detector's verdicts: the same columns
    assert {f.name: f.field_type for f in detector.schema} == anomaly and "detector" in detector.description


def test_processor_rows_read_nested_and_the_training_query_runs(client, warehouse_dir) -> None:
    _processor_rows(
        warehouse_dir,
        events.purchase(100.0, tax=21.0, shipping=4.5, transaction_id="P1", user_id="proc"),
        events.view_item("proc"),
    )
    rows = client.query_and_wait(TRAINING_QUERY).to_arrow().to_pylist()
    assert {"tax": 21.0, "shipping": 4.5, "value": 100.0} in rows
    (row,) = client.query_and_wait(
        f"SELECT ecommerce.purchase.tax, ecommerce.purchase.items[OFFSET(0)].item_price AS price "
        f"FROM `{CLOUD_RUN}` WHERE event='purchase' AND ecommerce.purchase.transaction_id = 'P1'"
    )
    assert (row["tax"], row["price"]) == (21.0, 100.0)
    listed = [r for r in client.list_rows(CLOUD_RUN) if r["user_id"] == "proc"]
    viewed = next(r for r in listed if r["event"] == "view_item")
    assert viewed["ecommerce"]["purchase"] is None and viewed["ecommerce"]["items"][0]["price"] == 10.0
    assert viewed["weekday"] == "Sunday"  # 2026-11-22, derived as the workshop's service does


def test_insert_rows_json_lands_in_the_processors_table(client, warehouse_dir) -> None:
    _processor_rows(warehouse_dir, events.purchase(50.0, transaction_id="side", user_id="proc-side"))
    before = client.get_table(CLOUD_RUN).num_rows
    assert client.insert_rows_json(CLOUD_RUN, [_workshop_purchase("api", 1000000.1)]) == []
    # the next query sees it at once: no flush, no wait
    (row,) = client.query_and_wait(
        f"SELECT count(*) AS n, countif(user_id = 'api') AS api FROM `{CLOUD_RUN}` WHERE event = 'purchase'"
    )
    assert row["api"] == 1 and client.get_table(CLOUD_RUN).num_rows == before + 1
    # the same warehouse table the stack's readers use, flat columns filled
    flat = query(warehouse_dir, "SELECT value, tax, items_count, source, user_id FROM cloud_run ORDER BY user_id")
    by_user = {r["user_id"]: r for r in flat.to_pylist()}
    assert by_user["api"] == {"value": 1000000.1, "tax": 4.9, "items_count": 2, "source": "bigquery", "user_id": "api"}
    assert by_user["proc-side"]["source"] == "processor"
    (nested,) = [r for r in client.list_rows(CLOUD_RUN) if r["user_id"] == "api"]
    assert [i["item_id"] for i in nested["ecommerce"]["purchase"]["items"]] == [12345, 67890]
    assert nested["event_datetime"] == dt.datetime(2026, 11, 23, 20, 59, 59, tzinfo=dt.UTC)


def test_bad_rows_get_insert_errors_and_change_nothing(client) -> None:
    before = client.get_table(CLOUD_RUN).num_rows
    missing_user = _workshop_purchase("x", 1.0)
    del missing_user["user_id"]
    no_time = _workshop_purchase("y", 1.0) | {"event_datetime": None}
    errors = client.insert_rows_json(CLOUD_RUN, [missing_user, no_time, _workshop_purchase("z", 1.0)])
    reasons = {e["index"]: e["errors"][0]["reason"] for e in errors}
    assert reasons == {0: "invalid", 1: "invalid", 2: "stopped"}
    assert client.get_table(CLOUD_RUN).num_rows == before


def test_the_warehouse_tables_cannot_be_dropped(client) -> None:
    with pytest.raises(exceptions.BadRequest):
        client.delete_table(CLOUD_RUN)
    with pytest.raises(exceptions.BadRequest):
        client.delete_dataset(DATASET, delete_contents=True)
    with pytest.raises(exceptions.Conflict):
        client.create_dataset(DATASET)
    # other tables may live in the dataset as in any other
    from google.cloud import bigquery

    mine = client.create_table(bigquery.Table(f"{PROJECT}.{DATASET}.mine", schema=[bigquery.SchemaField("a", "INT64")]))
    assert "mine" in {t.table_id for t in client.list_tables(DATASET)}
    client.delete_table(mine)


def test_the_detectors_rows_are_in_their_own_table(client, warehouse_dir) -> None:
    before = client.get_table(CLOUD_RUN).num_rows
    append(warehouse_dir, "dataflow", [event_row(events.purchase(7.0, user_id="det")) | {"source": "detector"}])
    assert client.get_table(CLOUD_RUN).num_rows == before
    (row,) = client.query_and_wait(
        f"SELECT count(*) AS n FROM `{PROJECT}.{DATASET}.dataflow` WHERE ecommerce.purchase.value = 7.0"
    )
    assert row["n"] == 1


@pytest.mark.local_only("the table is the warehouse's Parquet folder; its rows survive a kill -9 of hyp bigquery")
def test_inserted_rows_survive_kill_9(client, bigquery_server, warehouse_dir) -> None:
    assert client.insert_rows_json(CLOUD_RUN, [_workshop_purchase(f"k{i}", 2.0) for i in range(3)]) == []
    count = client.get_table(CLOUD_RUN).num_rows
    assert bigquery_server.process is not None
    bigquery_server.process.send_signal(signal.SIGKILL)
    bigquery_server.process.wait(timeout=30)
    bigquery_server.start(60)
    assert client.get_table(CLOUD_RUN).num_rows == count
    live = files(warehouse_dir, "cloud_run")
    assert live and all(not f.name.startswith(".") for f in live)
    assert not list((warehouse_dir / "_bigquery").rglob("cloud_run"))  # no second copy of the table


def test_processor_and_api_writing_at_once_lose_nothing(client, warehouse_dir) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def processor(k: int) -> None:
        _processor_rows(warehouse_dir, *[events.purchase(1.0, user_id=f"both-p{k}-{i}") for i in range(20)])

    def api(k: int) -> None:
        rows = [_workshop_purchase(f"both-a{k}-{i}", 1.0) for i in range(20)]
        assert client.insert_rows_json(CLOUD_RUN, rows) == []

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda k: (processor if k % 2 else api)(k), range(8)))
    (row,) = client.query_and_wait(
        f"SELECT count(*) AS n, count(DISTINCT user_id) AS d FROM `{CLOUD_RUN}` WHERE user_id LIKE 'both-%'"
    )
    assert (row["n"], row["d"]) == (160, 160)


def test_pubsub_direct_takes_pubsubs_metadata_columns(client, warehouse_dir) -> None:
    row = {
        "subscription_name": "projects/p/subscriptions/hyp_subscription_bq_direct",
        "message_id": "m-direct-1",
        "publish_time": "2026-11-23 10:00:00.250000",
        "data": '{"event": "view_item"}',
        "attributes": '{"anomaly": "0"}',
    }
    assert client.insert_rows_json(f"{PROJECT}.{DATASET}.pubsub_direct", [row]) == []
    stored = query(warehouse_dir, "SELECT data, publish_time FROM pubsub_direct WHERE message_id = 'm-direct-1'")
    assert stored.to_pylist() == [
        {"data": '{"event": "view_item"}', "publish_time": dt.datetime(2026, 11, 23, 10, 0, 0, 250000)}
    ]
