"""Pure stages: parse, warehouse rows, detection and dead-letter messages."""

from __future__ import annotations

import json

from services.detector import records
from services.warehouse.writer import to_arrow
from tests.services.detector.helpers import batch, message, purchase_event, view_event

HOSTILE = [
    b"",
    b"not json",
    b"\xff\xfe\x00garbage",
    b"[]",
    b"null",
    b'{"event": "purchase"}',
    json.dumps({**purchase_event(1), "event": "refund"}).encode(),
    json.dumps(purchase_event(2, value=float("nan"))).encode().replace(b"NaN", b"1e999"),
    b'{"a":' * 10_000 + b"1" + b"}" * 10_000,  # nesting deep enough to blow the recursion limit
    b"x" * 1_000_001,
]


def test_parse_keeps_valid_events_and_rejects_each_bad_one_with_a_reason():
    good = [message(0, purchase_event(0)), message(1, view_event(1))]
    bad = [message(10 + i, payload) for i, payload in enumerate(HOSTILE)]
    parsed = records.parse_batch(batch(*good, *bad))
    assert [m.message_id for m in parsed.event_messages] == ["m0", "m1"]
    assert parsed.purchase_index == (0,)
    assert [r.message.message_id for r in parsed.rejected] == [m.message_id for m in bad]
    assert all(r.reason for r in parsed.rejected)
    assert "payload" in parsed.rejected[1].reason
    assert "unknown event type" in parsed.rejected[6].reason


def test_deadletters_carry_original_bytes_attributes_and_reason():
    m = message(5, b"{broken", run_id="r1")
    letters = records.deadletters(records.parse_batch(batch(m)))
    assert len(letters) == 1
    data, attrs = letters[0]
    assert data == b"{broken"
    assert attrs["run_id"] == "r1" and attrs["sent_at"] == m.attributes["sent_at"]
    assert attrs[records.REASON_ATTRIBUTE].startswith("payload: not JSON")


def _scored(*events, flags):
    parsed = records.parse_batch(batch(*(message(i, e, anomaly="0") for i, e in enumerate(events))))
    verdicts = tuple(
        {"score": float(i), "is_anomaly": flag, "model_version": "7"}
        for i, flag in zip(parsed.purchase_index, flags, strict=True)
    )
    return parsed.replace(verdicts=verdicts, model_version="7")


def test_warehouse_rows_fit_the_tables_and_are_tagged():
    b = _scored(purchase_event(0), view_event(1), purchase_event(2, value=9e6), flags=[False, True])
    events = records.cloud_run_rows(b)
    verdicts = records.anomaly_rows(b)
    assert [r["message_id"] for r in events] == ["m0", "m1", "m2"]
    assert {r["source"] for r in events + verdicts} == {"detector"}
    assert [(r["transaction_id"], r["anomaly"], r["model_version"]) for r in verdicts] == [
        ("t0", False, "7"),
        ("t2", True, "7"),
    ]
    assert json.loads(verdicts[0]["attributes"])["anomaly"] == "0"
    assert to_arrow("cloud_run", events).num_rows == 3
    assert to_arrow("cloud_run_anomaly", verdicts).num_rows == 2


def test_detections_follow_the_contract():
    b = _scored(purchase_event(0), purchase_event(1, value=9e6), flags=[False, True])
    (found,) = records.detections(b)
    body, attrs = json.loads(found[0]), found[1]
    assert body["transaction_id"] == "t1" and body["user_id"] == "u1"
    assert body["event_datetime"] == "2026-11-22 10:00:00"
    assert body["features"] == {"tax": round(9e6 * 0.21, 2), "shipping": 4.99, "value": 9e6}
    assert body["score"] == 1.0 and body["model_version"] == "7"
    assert body["sent_at"] == b.messages[1].attributes["sent_at"]
    assert attrs == {**b.messages[1].attributes, "model_version": "7"}


def test_feature_rows_have_the_workshop_instance_shape():
    b = records.parse_batch(batch(message(0, purchase_event(0, value=100.0, shipping=0.0)), message(1, view_event(1))))
    (row,) = records.feature_rows(b)
    assert (row["tax"], row["shipping"], row["value"], row["items_count"]) == (21.0, 0.0, 100.0, 1)
