"""Pure functions over batches: parse, feature rows, warehouse rows, detection and dead-letter messages.

No I/O here, so every stage of the pipeline is tested with plain data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from services.common.events import EventError, event_row, parse_datetime, parse_event, purchase
from services.detector.batch import Batch, Message, Rejected

SOURCE = "detector"  # the `source` column of every warehouse row this service writes
REASON_ATTRIBUTE = "deadletter_reason"  # attribute carrying why a message was dead-lettered
FEATURES = ("tax", "shipping", "value")  # the workshop's instance shape (docs/architecture.md, Contracts)
VERDICT_COLUMNS = ("score", "is_anomaly", "nearest_centroid_id", "normalized_distance")


def parse_batch(batch: Batch) -> Batch:
    """Split a batch's messages into valid events and rejected messages (with reasons)."""
    events, event_messages, rejected = [], [], list(batch.rejected)
    for message in batch.messages:
        try:
            event = parse_event(message.data)
        except EventError as exc:
            rejected.append(Rejected(message, str(exc)))
            continue
        except Exception as exc:  # hostile input must never stop the pipeline
            rejected.append(Rejected(message, f"payload: unparseable ({type(exc).__name__}: {exc})"))
            continue
        events.append(event)
        event_messages.append(message)
    index = tuple(i for i, e in enumerate(events) if e["event"] == "purchase")
    return batch.replace(
        events=tuple(events), event_messages=tuple(event_messages), rejected=tuple(rejected), purchase_index=index
    )


def feature_rows(batch: Batch) -> list[dict[str, Any]]:
    """One model-input row per purchase: tax, shipping, value plus items (the model's feature function
    in models/features.py turns them into features; a model uses what it was trained on)."""
    rows = []
    for i in batch.purchase_index:
        event = batch.events[i]
        p = purchase(event)
        items = p.get("items") or (event.get("ecommerce") or {}).get("items") or []
        rows.append(
            {
                "tax": float(p["tax"]),
                "shipping": float(p["shipping"]),
                "value": float(p["value"]),
                "items": items,
                "items_count": len(items),
            }
        )
    return rows


def _us_to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC).replace(tzinfo=None)


def _attributes_json(message: Message) -> str:
    return json.dumps(message.attributes, separators=(",", ":"), sort_keys=True)


def cloud_run_rows(batch: Batch, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every valid event as an event-table row (``dataflow``, the workshop's schema) tagged ``source="detector"``."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for event, message in zip(batch.events, batch.event_messages, strict=True):
        row = event_row(event)
        row.update(
            message_id=message.message_id,
            publish_time=_us_to_datetime(message.publish_time_us) if message.publish_time_us else None,
            attributes=_attributes_json(message),
            source=SOURCE,
            ingested_at=now,
        )
        rows.append(row)
    return rows


def anomaly_rows(batch: Batch, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every scored purchase (normal or not) as a verdict row (``dataflow_anomaly``) with its verdict."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for i, verdict in zip(batch.purchase_index, batch.verdicts, strict=True):
        event, message = batch.events[i], batch.event_messages[i]
        p = purchase(event)
        rows.append(
            {
                "event_datetime": parse_datetime(event["event_datetime"]),
                "transaction_id": p.get("transaction_id"),
                "user_id": event.get("user_id"),
                "tax": float(p["tax"]),
                "shipping": float(p["shipping"]),
                "value": float(p["value"]),
                "anomaly": bool(verdict["is_anomaly"]),
                "score": verdict.get("score"),
                "nearest_centroid_id": verdict.get("nearest_centroid_id"),
                "normalized_distance": verdict.get("normalized_distance"),
                "model_version": verdict["model_version"],
                "message_id": message.message_id,
                "attributes": _attributes_json(message),
                "source": SOURCE,
                "scored_at": now,
            }
        )
    return rows


def detections(batch: Batch) -> list[tuple[bytes, dict[str, str]]]:
    """(data, attributes) of one ``hyp-detections`` message per anomaly (docs/architecture.md, Contracts)."""
    out = []
    for i, verdict in zip(batch.purchase_index, batch.verdicts, strict=True):
        if not verdict["is_anomaly"]:
            continue
        event, message = batch.events[i], batch.event_messages[i]
        p = purchase(event)
        body = {
            "transaction_id": p.get("transaction_id"),
            "user_id": event.get("user_id"),
            "event_datetime": event["event_datetime"],
            "features": {name: float(p[name]) for name in FEATURES},
            "score": verdict.get("score"),
            "is_anomaly": True,
            "nearest_centroid_id": verdict.get("nearest_centroid_id"),
            "normalized_distance": verdict.get("normalized_distance"),
            "model_version": verdict["model_version"],
            "message_id": message.message_id,
            "sent_at": message.attributes.get("sent_at"),
        }
        attributes = {**message.attributes, "model_version": str(verdict["model_version"])}
        out.append((json.dumps(body, separators=(",", ":"), default=_json_default).encode(), attributes))
    return out


def deadletters(batch: Batch) -> list[tuple[bytes, dict[str, str]]]:
    """(original bytes, original attributes + reason) for every rejected message."""
    return [
        (r.message.data, {**r.message.attributes, REASON_ATTRIBUTE: r.reason[:1000], "deadletter_source": SOURCE})
        for r in batch.rejected
    ]


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)
