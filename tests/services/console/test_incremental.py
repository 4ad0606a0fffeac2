"""Incremental aggregates equal a full recomputation over the same data."""

from __future__ import annotations

import json
import os
import random
import time
from datetime import datetime
from pathlib import Path

from services.console import sources
from services.console.live import LiveAnomalies
from services.warehouse import append
from services.warehouse.query import query
from services.warehouse.tables import TABLES


def full_counts(root: Path) -> dict[str, int]:
    """Row counts recomputed from scratch: DuckDB over every live file of every table."""
    return {name: query(root, f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py() for name in TABLES}


def rows(n: int, day: int, start: int) -> list[dict]:
    when = datetime(2026, 11, day, 12)
    row = {"subscription_name": "s", "publish_time": when, "data": "{}"}
    return [{**row, "message_id": str(start + i)} for i in range(n)]


def age_folders(root: Path, seconds: float = 3600) -> None:
    """Set every folder's modification time in the past, as a warehouse nobody wrote to lately looks."""
    past = time.time() - seconds
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        os.utime(folder, (past, past))


def test_warehouse_counts_equal_a_full_recount_through_appends_and_removals(tmp_path):
    counter = sources.WarehouseCounter()
    rng = random.Random(3)
    written: list[Path] = []
    next_id = 0
    for step in range(12):
        n, day = rng.randint(1, 40), rng.choice([20, 21, 22])
        written += append(tmp_path, "pubsub_direct", rows(n, day, next_id))
        next_id += n
        if step % 4 == 3:  # compaction-like: some files go away
            victim = written.pop(rng.randrange(len(written)))
            victim.unlink()
        if step % 3 == 2:
            age_folders(tmp_path)
        got = counter.counts(tmp_path)
        assert got["healthy"] and got["error"] is None
        assert got["tables"] == full_counts(tmp_path), f"step {step}"
    assert len(counter._rows) == len(written)  # the footer cache holds the live files only


def test_an_unchanged_warehouse_is_not_listed_again(tmp_path):
    counter = sources.WarehouseCounter()
    append(tmp_path, "pubsub_direct", rows(5, 20, 0))
    append(tmp_path, "pubsub_direct", rows(7, 21, 100))
    age_folders(tmp_path)
    first = counter.counts(tmp_path)
    assert first["tables"]["pubsub_direct"] == 12 and counter.footers == 2
    # that listing recorded its page check in each partition (services/warehouse/live.py), which changed the
    # folders: once they are quiet, one more listing, then none
    age_folders(tmp_path)
    assert counter.counts(tmp_path) == first
    listings, footers = counter.listings, counter.footers
    assert footers == 2
    for _ in range(5):
        assert counter.counts(tmp_path) == first
    assert (counter.listings, counter.footers) == (listings, footers)  # a few stat calls, nothing else
    # a new file in one partition: that table is listed again, and only the new footer is read
    append(tmp_path, "pubsub_direct", rows(3, 21, 200))
    got = counter.counts(tmp_path)
    assert got["tables"]["pubsub_direct"] == 15 == full_counts(tmp_path)["pubsub_direct"]
    assert counter.listings == listings + 1 and counter.footers == footers + 1


def test_a_just_modified_folder_is_listed_again_next_time(tmp_path):
    """A folder changed within the filesystem's timestamp tick may change again unseen: not trusted."""
    counter = sources.WarehouseCounter()
    append(tmp_path, "pubsub_direct", rows(2, 20, 0))
    age_folders(tmp_path, -1)  # modified "now" however slow this machine is
    counter.counts(tmp_path)
    listings = counter.listings
    counter.counts(tmp_path)  # listed again
    assert counter.listings == listings + 1
    age_folders(tmp_path)
    counter.counts(tmp_path)
    listings = counter.listings
    counter.counts(tmp_path)  # settled: trusted
    assert counter.listings == listings


def purchase(txn: str) -> bytes:
    body = {"user_id": "u", "ecommerce": {"purchase": {"transaction_id": txn, "value": 9.0, "tax": 1.0}}}
    return json.dumps(body).encode()


def test_live_counts_equal_a_recount_of_every_message():
    rng = random.Random(11)
    events, detections = [], []
    for i in range(3000):
        anomaly = rng.random() < 0.1
        attrs = {"anomaly": "1" if anomaly else "0"}
        if anomaly:
            attrs["anomaly_kind"] = rng.choice(["big_value", "odd_tax"])
        events.append((attrs, purchase(f"t{i}")))
        if rng.random() < (0.7 if anomaly else 0.02):
            label = rng.choice([attrs["anomaly"], attrs["anomaly"], ""])
            detections.append(({"anomaly": label} if label else {}, json.dumps({"transaction_id": f"t{i}"}).encode()))
    detections.append(({}, b"not json"))
    live = LiveAnomalies()
    for attrs, data in events:
        live.record_event(attrs, data)
    for attrs, data in detections:
        live.record_detection(attrs, data)
    snap = live.snapshot()

    labelled = [a for a, _ in events if a["anomaly"] == "1"]
    decodable = [a for a, d in detections if d != b"not json"]
    kinds: dict[str, int] = {}
    for a in labelled:
        kinds[a["anomaly_kind"]] = kinds.get(a["anomaly_kind"], 0) + 1
    expected = {
        "events_seen": len(events),
        "labelled": len(labelled),
        "detections": len(decodable),
        "true_positives": sum(a.get("anomaly") == "1" for a in decodable),
        "false_positives": sum(a.get("anomaly") == "0" for a in decodable),
        "unlabelled_detections": sum("anomaly" not in a for a in decodable),
        "undecodable": 1,
        "kinds": kinds,
    }
    assert {k: snap[k] for k in expected} == expected
