"""Housekeeping: lease expiry and backoff ends (event-driven), retention, log truncation, snapshot expiry.

The housekeeping thread sleeps on ``broker.timer`` until ``broker.due`` (the earliest lease deadline or
backoff end, monotonic); whoever sets an earlier one notifies it (``Broker.schedule``). Retention expiry,
log truncation and snapshot expiry run every ``COMPACT_EVERY_S``, so an idle emulator wakes only for that.
Every function here runs with the broker's lock held.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.pubsub.broker import Broker
    from services.pubsub.topic import TopicState

log = logging.getLogger("hyp.pubsub")
COMPACT_EVERY_S = 2.0
# A topic log's prefix is dropped once this many messages (or all of them) are no longer needed.
TRUNCATE_MIN = 4096


def tick(broker: Broker) -> None:
    """Expire leases and release delayed messages that are due; sets `broker.due` to the next such time."""
    now = time.monotonic()
    with broker.lock:
        due = float("inf")
        for sub in list(broker.subs.values()):
            expired = sub.expire_leases(now)
            released = sub.release_delayed(now)
            if expired or released:
                sub.notify()
            due = min(due, sub.next_due())
        broker.due = due


def compact(broker: Broker, wall: float | None = None) -> None:
    """Expire messages past their subscription's retention, drop the prefix of each topic log that
    nothing needs any more, expire snapshots (wall: now, for tests)."""
    wall = time.time() if wall is None else wall
    with broker.lock:
        expire_snapshots(broker)
        topics = list(broker.topics.values()) + [s.topic for s in broker.subs.values() if s.topic.deleted]
        for t in topics:
            _compact_topic(broker, t, wall)


def _compact_topic(broker: Broker, t: TopicState, wall: float) -> None:
    store = broker.store
    low = t.next_seq
    for sub in t.subs.values():
        sub.expire_retention(wall, broker.retention_s(sub.pb.message_retention_duration))
        low = min(low, sub.low_water())
        if store is not None:
            store.maybe_rewrite_sub(sub)
        if sub.pb.retain_acked_messages:
            low = min(low, t.first_seq_at(wall - broker.retention_s(sub.pb.message_retention_duration)))
    if t.pb.HasField("message_retention_duration"):
        low = min(low, t.first_seq_at(wall - broker.retention_s(t.pb.message_retention_duration)))
    for snap in broker.snapshots.values():
        if snap.topic is t:
            low = min(low, snap.low())
    drop = low - t.base
    if drop > 0 and (drop >= TRUNCATE_MIN or drop == len(t.data)):
        t.truncate(low)
        if store is not None:
            store.truncated(t)


def expire_snapshots(broker: Broker) -> None:
    now_ns = time.time_ns()
    gone = [n for n, s in broker.snapshots.items() if s.pb.expire_time.ToNanoseconds() < now_ns]
    for n in gone:
        del broker.snapshots[n]
    if gone:
        broker.save_state()


def run(broker: Broker, stop: threading.Event) -> None:
    """The housekeeping thread's loop, until stop is set (then notify ``broker.timer`` to end it)."""
    next_compact = time.monotonic() + COMPACT_EVERY_S
    with broker.lock:
        while not stop.is_set():
            now = time.monotonic()
            try:
                if now >= broker.due:
                    tick(broker)
                if now >= next_compact:
                    next_compact = now + COMPACT_EVERY_S
                    compact(broker)
            except Exception:
                log.exception("housekeeping failed")
                broker.due = min(broker.due, now + 1.0)
            broker.timer.wait(max(0.0, min(broker.due, next_compact) - time.monotonic()))
