"""Table schemas of the warehouse (the workshop's BigQuery tables).

Every table is a folder of immutable Parquet files, partitioned by the date of
its time column: ``<warehouse>/<table>/date=YYYY-MM-DD/part-<uuid>.parquet``.
Labels (ground truth) live only in the ``attributes`` JSON column, copied from
the Pub/Sub message attributes as BigQuery subscriptions do with metadata.

As in the workshop's dataset, the Cloud Run processor writes ``cloud_run`` (events) and ``cloud_run_anomaly``
(its verdicts), and the streaming detector (Dataflow's place) writes tables of its own: ``dataflow`` (events,
the workshop's table for its Dataflow job) and ``dataflow_anomaly`` (its verdicts; the workshop's Dataflow job
scores nothing, so this name is ours). Each event is once per event table and each verdict once per verdict
table. The event tables carry the flat event columns and the workshop's nested ``ecommerce`` record and
``weekday`` (ecommerce.py); the verdict tables share one schema.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from services.warehouse.ecommerce import ECOMMERCE


class WarehouseError(ValueError):
    """Bad input to the warehouse; the message names the table or column."""


@dataclass(frozen=True)
class Table:
    name: str
    schema: pa.Schema
    time_column: str  # the column whose date names the partition


_TS = pa.timestamp("us")
DETECTOR_TABLE = "dataflow"  # the workshop's table for its Dataflow job's events
EVENT_TABLES = ("cloud_run", DETECTOR_TABLE)  # tables with the workshop's event schema
DETECTOR_VERDICTS = "dataflow_anomaly"  # the detector's verdicts (local name: the workshop's Dataflow job scores none)
VERDICT_TABLES = ("cloud_run_anomaly", DETECTOR_VERDICTS)  # the processor's verdicts, the detector's

_EVENTS = pa.schema(
    [
        ("event_datetime", _TS),
        ("event", pa.string()),
        ("user_id", pa.string()),
        ("client_id", pa.string()),
        ("page", pa.string()),
        ("page_previous", pa.string()),
        ("transaction_id", pa.string()),
        ("affiliation", pa.string()),
        ("currency", pa.string()),
        ("coupon", pa.string()),
        ("value", pa.float64()),
        ("tax", pa.float64()),
        ("shipping", pa.float64()),
        ("items_count", pa.int32()),
        ("items", pa.string()),
        ("message_id", pa.string()),
        ("publish_time", _TS),
        ("attributes", pa.string()),
        ("source", pa.string()),
        ("ingested_at", _TS),
        ("weekday", pa.string()),
        ("ecommerce", ECOMMERCE),
    ]
)

_VERDICTS = pa.schema(
    [
        ("event_datetime", _TS),
        ("transaction_id", pa.string()),
        ("user_id", pa.string()),
        ("tax", pa.float64()),
        ("shipping", pa.float64()),
        ("value", pa.float64()),
        ("anomaly", pa.bool_()),
        ("score", pa.float64()),
        ("nearest_centroid_id", pa.int64()),
        ("normalized_distance", pa.float64()),
        ("model_version", pa.string()),
        ("message_id", pa.string()),
        ("attributes", pa.string()),
        ("source", pa.string()),
        ("scored_at", _TS),
    ]
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("cloud_run", _EVENTS, "event_datetime"),
        Table(DETECTOR_TABLE, _EVENTS, "event_datetime"),
        *(Table(name, _VERDICTS, "event_datetime") for name in VERDICT_TABLES),
        Table(
            "pubsub_direct",
            pa.schema(
                [
                    ("subscription_name", pa.string()),
                    ("message_id", pa.string()),
                    ("publish_time", _TS),
                    ("data", pa.string()),
                    ("attributes", pa.string()),
                ]
            ),
            "publish_time",
        ),
    )
}


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise WarehouseError(f"unknown table {name!r} (tables: {', '.join(TABLES)})") from None
