"""`hyp up`'s BigQuery serves the stack's own warehouse folder: what the processor's writer appends is what the
workshop's query reads through Google's client, and rows inserted through the client land in that folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.common.events import event_row
from services.testing import events
from services.testing.local_stack import LocalHypStack
from services.warehouse import append
from services.warehouse.query import query

pytestmark = [
    pytest.mark.integration,
    pytest.mark.local_only("hyp up's wiring of hyp bigquery to the stack's warehouse folder"),
]

TRAINING_QUERY = """
SELECT ecommerce.purchase.tax AS tax, ecommerce.purchase.shipping AS shipping, ecommerce.purchase.value AS value
FROM `hyp-local.ecommerce_sink.cloud_run` WHERE event='purchase'
"""  # the workshop's, with the stack's project id


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalHypStack]:
    with LocalHypStack(["bigquery"]) as running:
        yield running


def test_the_processors_rows_are_what_the_workshop_query_reads(stack: LocalHypStack) -> None:
    rows = [event_row(events.purchase(value, tax=round(value * 0.21, 2), shipping=4.99)) for value in (10.0, 20.0)]
    append(stack.warehouse_dir, "cloud_run", rows)  # as the processor writes cloud_run
    got = sorted((r["tax"], r["shipping"], r["value"]) for r in stack.bigquery_client().query(TRAINING_QUERY).result())
    assert got == [(2.1, 4.99, 10.0), (4.2, 4.99, 20.0)]


def test_rows_inserted_through_the_client_land_in_the_stacks_warehouse(stack: LocalHypStack) -> None:
    client = stack.bigquery_client()
    row = {"event_datetime": "2026-11-27T08:00:00", "event": "view_item", "user_id": "via-api", "client_id": "c"}
    assert client.insert_rows_json("hyp-local.ecommerce_sink.cloud_run", [row]) == []
    found = query(stack.warehouse_dir, "SELECT count(*) AS n FROM cloud_run WHERE user_id = 'via-api'").to_pylist()
    assert found == [{"n": 1}]
