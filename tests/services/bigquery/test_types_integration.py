"""Types as BigQuery returns them, through Google's client: a TIMESTAMP column (the workshop's
``event_datetime``, every time column of the stack's tables) is TIMESTAMP in tables.get and in query results
alike, its values aware UTC datetimes in rows and ``datetime64[..., UTC]`` in to_dataframe; a DATETIME column
stays DATETIME, its values naive."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.events import event_row
from services.testing import events
from services.warehouse import append
from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/standard-sql/data-types"),
]

WHEN = dt.datetime(2026, 11, 22, 10, 30, 15, 123456)  # the warehouse's naive UTC time
UTC_WHEN = WHEN.replace(tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def stored(warehouse_dir) -> str:
    """One event the processor committed (its naive UTC time), in the workshop's cloud_run."""
    row = event_row(events.purchase(12.5, user_id="types-user")) | {"event_datetime": WHEN, "source": "processor"}
    append(warehouse_dir, "cloud_run", [row])
    return "types-user"


def test_timestamp_columns_are_timestamp_in_the_schema_and_in_results(client, stored) -> None:
    table = client.get_table(f"{PROJECT}.ecommerce_sink.cloud_run")
    assert {f.name: f.field_type for f in table.schema}["event_datetime"] == "TIMESTAMP"
    anomaly = client.get_table(f"{PROJECT}.ecommerce_sink.dataflow_anomaly")
    assert {f.name: f.field_type for f in anomaly.schema}["scored_at"] == "TIMESTAMP"
    job = client.query(f"SELECT event_datetime, user_id FROM ecommerce_sink.cloud_run WHERE user_id = '{stored}'")
    rows = list(job.result())
    assert job.result().schema[0].field_type == "TIMESTAMP"
    assert rows[0]["event_datetime"] == UTC_WHEN and rows[0]["event_datetime"].utcoffset() == dt.timedelta(0)
    frame = client.query(
        f"SELECT event_datetime FROM ecommerce_sink.cloud_run WHERE user_id = '{stored}'"
    ).to_dataframe()
    assert str(frame["event_datetime"].dtype).endswith(", UTC]")
    assert frame["event_datetime"][0].to_pydatetime() == UTC_WHEN
    listed = list(client.list_rows(table, selected_fields=[table.schema[0]], max_results=10))
    assert UTC_WHEN in [r["event_datetime"] for r in listed]


def test_timestamp_functions_work_on_the_stacks_times_in_utc(client, stored) -> None:
    (row,) = client.query_and_wait(
        "SELECT EXTRACT(HOUR FROM event_datetime) AS h, DATE(event_datetime) AS d, "
        "TIMESTAMP_ADD(event_datetime, INTERVAL 1 HOUR) AS later "
        f"FROM ecommerce_sink.cloud_run WHERE user_id = '{stored}'"
    )
    assert (row["h"], row["d"], row["later"]) == (10, WHEN.date(), UTC_WHEN + dt.timedelta(hours=1))


def test_a_datetime_column_stays_datetime_with_naive_values(client, dataset) -> None:
    from google.cloud import bigquery

    schema = [bigquery.SchemaField("at", "DATETIME"), bigquery.SchemaField("ts", "TIMESTAMP")]
    table = client.create_table(bigquery.Table(f"{PROJECT}.{dataset}.times", schema=schema))
    assert (
        client.insert_rows_json(table, [{"at": "2026-11-22T10:30:15.123456", "ts": "2026-11-22 10:30:15.123456"}]) == []
    )
    job = client.query(f"SELECT at, ts FROM {dataset}.times")
    (row,) = list(job.result())
    assert [(f.name, f.field_type) for f in job.result().schema] == [("at", "DATETIME"), ("ts", "TIMESTAMP")]
    assert row["at"] == WHEN and row["at"].tzinfo is None and row["ts"] == UTC_WHEN
    frame = client.query(f"SELECT at, ts FROM {dataset}.times").to_dataframe()
    assert str(frame["at"].dtype).startswith("datetime64") and str(frame["ts"].dtype).endswith(", UTC]")
    assert "UTC" not in str(frame["at"].dtype)
