"""The purchase-event contract (docs/architecture.md, Contracts): parsing, validation, flattening.

Events are GA4-style data-layer objects. Ground truth (``anomaly``,
``anomaly_kind``, ...) travels in Pub/Sub message attributes, never here.
Every consumer (detector, processor, warehouse writers) parses with
:func:`parse_event`, so a bad event gets the same reason everywhere.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

EVENT_TYPES = ("view_item", "add_to_cart", "purchase")
LABEL_ATTRIBUTES = ("anomaly", "anomaly_kind", "run_id")
MAX_EVENT_BYTES = 1_000_000


class EventError(ValueError):
    """An event that cannot be used; the message names the field."""


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventError(f"{field}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise EventError(f"{field}: must be finite, got {value}")
    return float(value)


def _string(obj: dict[str, Any], field: str, path: str, *, required: bool = True) -> str | None:
    value = obj.get(field)
    if value is None:
        if required:
            raise EventError(f"{path}{field}: missing")
        return None
    if not isinstance(value, str):
        raise EventError(f"{path}{field}: expected a string, got {type(value).__name__}")
    return value


def parse_datetime(value: str) -> datetime:
    """Parse the workshop's ``event_datetime`` ("%Y-%m-%d %H:%M:%S[.f]") or any ISO 8601 form.

    Times with an offset are converted to UTC; the result is naive UTC, as the warehouse stores it.
    """
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise EventError(f"event_datetime: not a date-time: {value!r}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def validate_event(event: Any) -> dict[str, Any]:
    """Check an already-decoded event against the contract; return it or raise EventError."""
    if not isinstance(event, dict):
        raise EventError(f"event: expected a JSON object, got {type(event).__name__}")
    kind = _string(event, "event", "")
    if kind not in EVENT_TYPES:
        raise EventError(f"event: unknown event type {kind!r} (expected one of {', '.join(EVENT_TYPES)})")
    parse_datetime(_string(event, "event_datetime", "") or "")
    _string(event, "user_id", "")
    _string(event, "client_id", "", required=False)
    ecommerce = event.get("ecommerce")
    if not isinstance(ecommerce, dict):
        raise EventError("ecommerce: missing or not an object")
    items = ecommerce.get("items")
    if kind == "purchase":
        purchase = ecommerce.get("purchase")
        if not isinstance(purchase, dict):
            raise EventError("ecommerce.purchase: missing or not an object")
        _string(purchase, "transaction_id", "ecommerce.purchase.")
        for field in ("value", "tax", "shipping"):
            if field not in purchase:
                raise EventError(f"ecommerce.purchase.{field}: missing")
            _number(purchase[field], f"ecommerce.purchase.{field}")
        items = purchase.get("items", items)
    if items is not None:
        if not isinstance(items, list):
            raise EventError("ecommerce.items: expected a list")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise EventError(f"ecommerce.items[{i}]: expected an object")
            price = item.get("price", item.get("item_price"))
            if price is not None:
                _number(price, f"ecommerce.items[{i}].price")
            if "quantity" in item:
                _number(item["quantity"], f"ecommerce.items[{i}].quantity")
    return event


def parse_event(data: bytes | str) -> dict[str, Any]:
    """Decode and validate one message payload; raise EventError naming what is wrong."""
    if len(data) > MAX_EVENT_BYTES:
        raise EventError(f"payload: {len(data)} bytes is over the {MAX_EVENT_BYTES}-byte limit")
    try:
        event = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventError(f"payload: not JSON ({exc})") from None
    return validate_event(event)


def purchase(event: dict[str, Any]) -> dict[str, Any]:
    """The ``ecommerce.purchase`` object of a purchase event ({} for other events)."""
    return (event.get("ecommerce") or {}).get("purchase") or {}


def event_row(event: dict[str, Any]) -> dict[str, Any]:
    """Flatten an event into a ``cloud_run`` warehouse row (payload fields only)."""
    p = purchase(event)
    items = p.get("items") or (event.get("ecommerce") or {}).get("items") or []
    return {
        "event_datetime": parse_datetime(event["event_datetime"]),
        "event": event["event"],
        "user_id": event.get("user_id"),
        "client_id": event.get("client_id"),
        "page": event.get("page"),
        "page_previous": event.get("page_previous"),
        "transaction_id": p.get("transaction_id"),
        "affiliation": p.get("affiliation"),
        "currency": p.get("currency"),
        "coupon": p.get("coupon"),
        "value": p.get("value"),
        "tax": p.get("tax"),
        "shipping": p.get("shipping"),
        "items_count": len(items),
        "items": json.dumps(items, separators=(",", ":")),
    }
