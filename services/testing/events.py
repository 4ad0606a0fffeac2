"""Purchase and page-view events in the workshop's data-layer shape, for tests that need a handful of them.

Field names follow docs/architecture.md's purchase event (GA4-style: ``ecommerce.purchase`` with
``value``, ``tax``, ``shipping``, ``items[]``). For realistic volumes with labelled anomalies use the
load generator (``hyp loadgen``) instead. Times are ``YYYY-MM-DD HH:MM:SS`` in UTC, as the generator writes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# A fixed event time: tests that compare rows get the same partition every run.
FIXED_TIME = "2026-11-22 10:00:00"


def now() -> str:
    """The current UTC time as an ``event_datetime`` (for tests where the event must be recent)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def purchase(
    value: float = 35.43,
    *,
    tax: float | None = None,
    shipping: float = 4.99,
    user_id: str = "u1",
    client_id: str = "c1",
    transaction_id: str = "t1",
    event_datetime: str = FIXED_TIME,
    item_name: str = "thing",
    **purchase_fields: Any,
) -> dict[str, Any]:
    """One purchase of one item worth ``value``; ``tax`` defaults to 21 % of it. ``purchase_fields`` set or
    replace fields of ``ecommerce.purchase`` (``affiliation``, ``currency``, ``coupon``, ``items``...)."""
    return {
        "event_datetime": event_datetime,
        "event": "purchase",
        "user_id": user_id,
        "client_id": client_id,
        "page": "/checkout",
        "page_previous": "/cart",
        "ecommerce": {
            "purchase": {
                "transaction_id": transaction_id,
                "affiliation": "shop",
                "value": value,
                "tax": round(value * 0.21, 2) if tax is None else tax,
                "shipping": shipping,
                "currency": "EUR",
                "items": [{"item_id": "i1", "item_name": item_name, "price": value, "quantity": 1}],
                **purchase_fields,
            }
        },
    }


def view_item(user_id: str = "u1", *, event_datetime: str = FIXED_TIME, price: float = 10.0) -> dict[str, Any]:
    """A ``view_item`` event (not scored: detectors and the processor pass it through)."""
    return {
        "event_datetime": event_datetime,
        "event": "view_item",
        "user_id": user_id,
        "ecommerce": {"items": [{"item_id": "i1", "price": price, "quantity": 1}]},
    }
