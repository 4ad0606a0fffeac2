import json
from datetime import datetime

import pytest

from services.common.events import EventError, event_row, parse_datetime, parse_event
from services.testing import events


def purchase_event(**overrides):
    event = events.purchase(
        35.43,
        tax=7.09,
        user_id="UID0001",
        client_id="CID0001",
        transaction_id="T1",
        affiliation="hyp-shop",
        coupon=None,
        items=[{"item_name": "Shirt", "item_id": "I1", "price": 35.43, "quantity": 1}],
    )
    event.update(overrides)
    return event


def test_valid_purchase_flattens_to_a_row():
    row = event_row(parse_event(json.dumps(purchase_event()).encode()))
    assert row["value"] == 35.43 and row["tax"] == 7.09 and row["shipping"] == 4.99
    assert row["transaction_id"] == "T1" and row["items_count"] == 1
    assert row["event_datetime"].year == 2026


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"\xff\xfe", "payload"),
        (b"{not json", "payload"),
        (b"[1, 2]", "event: expected a JSON object"),
        (json.dumps(purchase_event(event="refund")).encode(), "event: unknown event type"),
        (json.dumps(purchase_event(event_datetime="yesterday")).encode(), "event_datetime"),
        (json.dumps(purchase_event(user_id=None)).encode(), "user_id: missing"),
        (json.dumps({**purchase_event(), "ecommerce": {}}).encode(), "ecommerce.purchase"),
    ],
)
def test_bad_events_name_the_field(data, field):
    with pytest.raises(EventError, match=field):
        parse_event(data)


@pytest.mark.parametrize("value", ["12", True, None])
def test_non_numeric_amounts_are_rejected(value):
    event = purchase_event()
    event["ecommerce"]["purchase"]["tax"] = value
    with pytest.raises(EventError, match=r"ecommerce\.purchase\.tax"):
        parse_event(json.dumps(event))


def test_non_finite_amounts_are_rejected():
    with pytest.raises(EventError, match="finite"):
        parse_event(
            '{"event":"purchase","event_datetime":"2026-01-01 00:00:00","user_id":"u",'
            '"ecommerce":{"purchase":{"transaction_id":"t","value":NaN,"tax":1,"shipping":1}}}'
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22 10:00:00", datetime(2026, 11, 22, 10, 0, 0)),
        ("2026-11-22 10:00:00.250", datetime(2026, 11, 22, 10, 0, 0, 250_000)),
        ("2026-11-22T10:00:00Z", datetime(2026, 11, 22, 10, 0, 0)),
        ("2026-11-22T11:00:00+01:00", datetime(2026, 11, 22, 10, 0, 0)),
    ],
)
def test_event_datetime_forms_parse_to_naive_utc(text, expected):
    assert parse_datetime(text) == expected
