"""The workshop's dataset ``ecommerce_sink``: the stack's warehouse tables as BigQuery tables.

Every project of ``hyp bigquery`` has the dataset; its tables ``cloud_run`` (the processor's events),
``dataflow`` (the detector's events, the workshop's table for its Dataflow job), ``cloud_run_anomaly`` (the
processor's verdicts), ``dataflow_anomaly`` (the detector's verdicts; a hyp-local table, as the workshop's
Dataflow job scores nothing) and ``pubsub_direct`` are not copies: they are the warehouse's own Parquet
folders (services/warehouse/tables.py), shown in the workshop's schema (its
``datalayer/ecommerce_events_bq_schema.json`` for the event tables, DAY-partitioned on ``event_datetime``).
A row inserted through the API is written by the warehouse's own writer into the same folder the processor
writes, so both see one table. Other tables may be created in the dataset as in any other; these five
cannot be dropped, truncated or altered through the API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from services.bigquery.schema import Field, arrow_field, parse_fields
from services.warehouse.tables import DETECTOR_TABLE, DETECTOR_VERDICTS, EVENT_TABLES, TABLES

DATASET = "ecommerce_sink"
LOCATION = "europe-west1"  # the workshop's region
SOURCE = "bigquery"  # the ``source`` column of rows that came in over the API


def _f(name: str, kind: str, mode: str = "NULLABLE", fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": kind, "mode": mode}
    if fields:
        out["fields"] = fields
    return out


def _strings(*names: str) -> list[dict[str, Any]]:
    return [_f(n, "STRING") for n in names]


# the workshop's event schema (ecommerce_events_bq_schema.json), field by field and in its order
EVENT_SCHEMA: list[dict[str, Any]] = [
    _f("event_datetime", "TIMESTAMP"),
    _f("event", "STRING", "REQUIRED"),
    _f("user_id", "STRING", "REQUIRED"),
    *_strings("client_id", "page", "page_previous", "weekday"),
    _f(
        "ecommerce",
        "RECORD",
        fields=[
            _f(
                "items",
                "RECORD",
                "REPEATED",
                [
                    _f("index", "INTEGER"),
                    _f("item_id", "INTEGER"),
                    *_strings("item_name", "item_list_name", "item_list_id"),
                    _f("price", "FLOAT"),
                    _f("item_variant", "STRING"),
                    _f("quantity", "INTEGER"),
                    *_strings("item_brand", "item_category", "item_category_2", "item_category_3", "item_category_4"),
                ],
            ),
            _f(
                "purchase",
                "RECORD",
                fields=[
                    _f(
                        "items",
                        "RECORD",
                        "REPEATED",
                        [
                            _f("item_coupon", "STRING"),
                            _f("quantity", "INTEGER"),
                            *_strings("item_variant", "item_category", "item_name"),
                            _f("item_id", "INTEGER"),
                            _f("item_brand", "STRING"),
                            _f("item_price", "FLOAT"),
                        ],
                    ),
                    _f("coupon", "STRING"),
                    _f("tax", "FLOAT"),
                    _f("shipping", "FLOAT"),
                    _f("value", "FLOAT"),
                    *_strings("affiliation", "currency", "transaction_id"),
                ],
            ),
        ],
    ),
]
DESCRIPTIONS = {
    "cloud_run": "Events written by the Cloud Run processor (hyp processor).",
    DETECTOR_TABLE: "Events written by the streaming detector (hyp detector, Dataflow's place).",
    "cloud_run_anomaly": "Purchases scored by the processor: the workshop's tax, shipping, value, anomaly, plus score "
    "and model.",
    DETECTOR_VERDICTS: "Purchases scored by the streaming detector (hyp-local: the workshop's Dataflow job scores "
    "none); the columns of cloud_run_anomaly.",
    "pubsub_direct": "Messages of the BigQuery subscription, with Pub/Sub's metadata columns.",
}
TABLE_NAMES = tuple(DESCRIPTIONS)


def api_type(kind: pa.DataType) -> pa.DataType:
    """A warehouse column's Arrow type as the API shows it: the warehouse's naive times are UTC instants."""
    return pa.timestamp(kind.unit, tz="UTC") if pa.types.is_timestamp(kind) and kind.tz is None else kind


def schema(name: str) -> list[dict[str, Any]]:
    """The API schema of a workshop table: the workshop's for the event tables, the warehouse's columns else."""
    if name in EVENT_TABLES:
        return EVENT_SCHEMA
    return [arrow_field(f.name, api_type(f.type)).to_api() for f in TABLES[name].schema]


def is_builtin(dataset: str, table: str) -> bool:
    return dataset == DATASET and table in TABLE_NAMES


def dataset_resource(project: str, created_ms: str) -> dict[str, Any]:
    return {
        "kind": "bigquery#dataset",
        "id": f"{project}:{DATASET}",
        "datasetReference": {"projectId": project, "datasetId": DATASET},
        "location": LOCATION,
        "description": "The workshop's dataset: the stack's warehouse tables (hyp-local).",
        "creationTime": created_ms,
        "lastModifiedTime": created_ms,
        "etag": created_ms,
    }


def table_resource(project: str, name: str, created_ms: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "kind": "bigquery#table",
        "id": f"{project}:{DATASET}.{name}",
        "tableReference": {"projectId": project, "datasetId": DATASET, "tableId": name},
        "schema": {"fields": schema(name)},
        "type": "TABLE",
        "location": LOCATION,
        "description": DESCRIPTIONS[name],
        "creationTime": created_ms,
        "lastModifiedTime": created_ms,
        "etag": created_ms,
    }
    if name in EVENT_TABLES:
        resource["timePartitioning"] = {"type": "DAY", "field": "event_datetime"}
    return resource


def fields(name: str) -> tuple[Field, ...]:
    return parse_fields(schema(name))


def to_warehouse(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows converted for the API schema -> rows for the warehouse writer (naive UTC times; for the event
    tables the flat columns the stack's readers use, filled from the nested record)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    out = []
    for row in rows:
        flat = {k: _naive(v) for k, v in row.items()}
        if name in EVENT_TABLES:
            flat |= _flatten(row.get("ecommerce")) | {"source": SOURCE, "ingested_at": now}
        out.append(flat)
    return out


def _flatten(record: Mapping[str, Any] | None) -> dict[str, Any]:
    record = dict(record or {})
    purchase = dict(record.get("purchase") or {})
    if record.get("purchase") is not None:
        purchase["items"] = list(purchase.get("items") or [])
        record["purchase"] = purchase
    record["items"] = list(record.get("items") or [])
    items = purchase.get("items") or record["items"]
    flat = {
        k: purchase.get(k) for k in ("transaction_id", "affiliation", "currency", "coupon", "value", "tax", "shipping")
    }
    return flat | {
        "items": json.dumps(items, separators=(",", ":")),
        "items_count": len(items),
        "ecommerce": record,
    }


def _naive(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value
