"""Server-side aggregation of labelled events and detections."""

from __future__ import annotations

import json
import threading

from services.console.live import MAX_ANOMALIES, LiveAnomalies


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def purchase(txn: str, value: float = 1_000_000.1, user: str = "u1") -> bytes:
    event = {
        "event": "purchase",
        "event_datetime": "2026-11-22 10:00:00",
        "user_id": user,
        "ecommerce": {"purchase": {"transaction_id": txn, "value": value, "tax": 2.5, "shipping": 4.0}},
    }
    return json.dumps(event).encode()


def detection(txn: str, score: float = 9.5, version: str = "3") -> bytes:
    body = {"transaction_id": txn, "user_id": "u1", "score": score, "model_version": version}
    return json.dumps({**body, "features": {"value": 1_000_000.1, "tax": 2.5, "shipping": 4.0}}).encode()


def test_injected_then_detected_is_one_row_and_counts_a_true_positive():
    live = LiveAnomalies(clock=Clock())
    live.record_event({"anomaly": "1", "anomaly_kind": "huge_value"}, purchase("t1"))
    row = live.snapshot()["anomalies"][0]
    assert (row["status"], row["kind"], row["value"], row["user_id"]) == ("injected", "huge_value", 1_000_000.1, "u1")
    live.record_detection({"anomaly": "1", "anomaly_kind": "huge_value"}, detection("t1"))
    snap = live.snapshot()
    assert len(snap["anomalies"]) == 1
    row = snap["anomalies"][0]
    assert (row["status"], row["score"], row["model_version"]) == ("detected", 9.5, "3")
    assert (snap["precision"], snap["recall"]) == (1.0, 1.0)


def test_a_row_carries_the_events_message_id_from_either_side():
    live = LiveAnomalies(clock=Clock())
    live.record_event({"anomaly": "1"}, purchase("t1"), "m-1")  # the labels feed: the id of its delivery
    assert live.snapshot()["anomalies"][0]["message_id"] == "m-1"
    body = {**json.loads(detection("t2")), "message_id": "m-2"}  # the detector names the event it scored
    live.record_detection({"anomaly": "1"}, json.dumps(body).encode())
    assert {r["key"]: r["message_id"] for r in live.snapshot()["anomalies"]} == {"t1": "m-1", "t2": "m-2"}


def test_precision_and_recall_follow_the_labels():
    live = LiveAnomalies(clock=Clock())
    for i in range(4):
        live.record_event({"anomaly": "1", "anomaly_kind": "k"}, purchase(f"a{i}"))
    live.record_event({"anomaly": "0"}, purchase("n0", value=20.0))  # normal: counted, not decoded
    live.record_detection({"anomaly": "1"}, detection("a0"))
    live.record_detection({"anomaly": "1"}, detection("a1"))
    live.record_detection({"anomaly": "0"}, detection("n0"))
    live.record_detection({}, detection("x"))  # unlabelled: neither
    snap = live.snapshot()
    assert snap["events_seen"] == 5
    assert snap["labelled"] == 4
    assert snap["precision"] == 2 / 3
    assert snap["recall"] == 2 / 4
    statuses = {r["key"]: r["status"] for r in snap["anomalies"]}
    assert statuses["n0"] == "false alarm"
    assert statuses["x"] == "detected (unlabelled)"
    assert statuses["a2"] == "injected"


def test_an_undetected_anomaly_becomes_missed():
    clock = Clock()
    live = LiveAnomalies(miss_after_s=30, clock=clock)
    live.record_event({"anomaly": "1"}, purchase("t1"))
    clock.now += 31
    assert live.snapshot()["anomalies"][0]["status"] == "missed"


def test_bad_messages_are_counted_not_raised_and_rows_stay_bounded():
    live = LiveAnomalies(clock=Clock())
    live.record_detection({}, b"\xff not json")
    live.record_event({"anomaly": "1"}, b"[1, 2]")
    for i in range(MAX_ANOMALIES + 50):
        live.record_detection({"anomaly": "1"}, detection(f"t{i}"))
    snap = live.snapshot(limit=MAX_ANOMALIES)
    assert snap["undecodable"] == 1
    assert len(snap["anomalies"]) == MAX_ANOMALIES
    assert snap["anomalies"][0]["key"] == f"t{MAX_ANOMALIES + 49}"  # newest first


def test_rates_come_from_counter_deltas():
    clock = Clock()
    live = LiveAnomalies(clock=clock)
    live.add_point(100.0)
    for i in range(10):
        live.record_detection({"anomaly": "1"}, detection(f"t{i}"))
    clock.now += 2
    live.add_point(120.0)
    series = live.snapshot()["series"]
    assert series[0]["detections_per_s"] is None
    assert series[1] == {"t": clock.now, "events_per_s": 120.0, "detections_per_s": 5.0, "labelled_per_s": 0.0}


def test_concurrent_callbacks_lose_no_count():
    live = LiveAnomalies(clock=Clock())

    def work(n: int) -> None:
        for i in range(n):
            live.record_event({"anomaly": "0"}, b"")
            if i % 10 == 0:
                live.record_detection({"anomaly": "1"}, detection(f"{threading.get_ident()}-{i}"))

    threads = [threading.Thread(target=work, args=(2000,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    snap = live.snapshot()
    assert snap["events_seen"] == 8000
    assert snap["detections"] == 800
