"""Order flow on Google Cloud. Every function takes its client, so tests hand in clients pointed at an
emulator and production code passes the default ones."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from models import Order

ORDERS_SCHEMA = [("order_id", "STRING"), ("customer", "STRING"), ("amount", "FLOAT")]


def publish_orders(publisher: Any, topic: str, orders: Iterable[Order]) -> list[str]:
    """Publish each order (JSON, ``customer`` as an attribute); the message ids."""
    futures = [publisher.publish(topic, order.to_bytes(), customer=order.customer) for order in orders]
    return [future.result(timeout=30) for future in futures]


def pull_orders(subscriber: Any, subscription: str, want: int, timeout: float = 20.0) -> list[Order]:
    """Pull (and acknowledge) until ``want`` orders arrived or ``timeout`` passed."""
    got: list[Order] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        response = subscriber.pull(request={"subscription": subscription, "max_messages": want - len(got)}, timeout=5)
        received = list(response.received_messages)
        if received:
            subscriber.acknowledge(request={"subscription": subscription, "ack_ids": [m.ack_id for m in received]})
            got += [Order.from_bytes(m.message.data) for m in received]
    return got


def create_orders_table(bigquery: Any, dataset: str, table: str = "orders") -> str:
    """The dataset and its orders table (created if missing); the table id ``project.dataset.table``."""
    from google.cloud import bigquery as bq

    bigquery.create_dataset(f"{bigquery.project}.{dataset}", exists_ok=True)
    table_id = f"{bigquery.project}.{dataset}.{table}"
    schema = [bq.SchemaField(name, kind) for name, kind in ORDERS_SCHEMA]
    bigquery.create_table(bq.Table(table_id, schema=schema), exists_ok=True)
    return table_id


def load_orders(bigquery: Any, table_id: str, orders: Iterable[Order]) -> None:
    errors = bigquery.insert_rows_json(table_id, [order.row() for order in orders])
    if errors:
        raise RuntimeError(f"insert into {table_id} failed: {errors}")


def revenue_by_customer(bigquery: Any, table_id: str) -> dict[str, float]:
    sql = f"SELECT customer, SUM(amount) AS revenue FROM `{table_id}` GROUP BY customer ORDER BY customer"
    return {row["customer"]: row["revenue"] for row in bigquery.query(sql).result()}


def archive_receipt(storage: Any, bucket: str, order: Order) -> str:
    """Keep the order's receipt as ``receipts/<order_id>.json`` in ``bucket``; the object name."""
    name = f"receipts/{order.order_id}.json"
    storage.bucket(bucket).blob(name).upload_from_string(order.to_bytes(), content_type="application/json")
    return name


def read_receipt(storage: Any, bucket: str, name: str) -> Order:
    return Order.from_bytes(storage.bucket(bucket).blob(name).download_as_bytes())
