"""Whole-stack chaos (issue 18): kill -9 services of a running `hyp up` stack while the load generator
publishes, let `hyp up` bring each back, then count by message id what reached the warehouse.

What was published is known exactly from a subscription of our own on the events topic (:class:`Recorder`):
every message the emulator accepted from the moment it exists is delivered to it, whatever happens to the
stack's own consumers. Shared by ``benchmarks/chaos.py`` (the whole stack at 2,000 events/s, every service)
and ``tests/services/stack/test_chaos_stack.py`` (a bounded run in the test tier).

The warehouse is read through a ``query(sql) -> pyarrow.Table`` the caller passes (the warehouse's own query
function, say): this test kit does not import the warehouse (docs/architecture.md, layering).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.common import names
from services.common.processes import wait_for
from services.stack import definition as d
from services.stack.healthcheck import probe
from services.testing.local_stack import LocalHypStack

EVENTS_TOPIC = "hyp-pubsub-topic"
RECORD_SUBSCRIPTION = "hyp_chaos_record"
# every event lands in each of these (processor, detector, the BigQuery subscription)
EVENT_TABLES = ("cloud_run", "dataflow", "pubsub_direct")
# every purchase gets a verdict row in each of these (processor, detector)
VERDICT_TABLES = ("cloud_run_anomaly", "dataflow_anomaly")
# subscriptions nothing in the stack drains (kept for inspection, bounded by retention): not backlogs to wait on
UNDRAINED = ("hyp_subscription_detections", "hyp_subscription_deadletter")
CAUGHT_UP_OLDEST_S = 5.0  # a subscription whose oldest unacked message is younger than this is keeping up

Query = Callable[[str], Any]  # SQL over the warehouse -> pyarrow.Table


@dataclass(frozen=True)
class Published:
    publish_s: float  # the emulator's publish time, seconds since the epoch
    event: str  # the generator's `event` attribute (purchase, view_item, ...)
    labelled: bool  # the generator's `anomaly` attribute is "1"


class Recorder:
    """Every message published to the events topic from now on, by message id: a subscription of our own,
    pulled and acknowledged in a thread, riding over emulator restarts (the subscription lives in its
    ``--data-dir``; an acknowledgement lost in a crash only delivers a message twice, recorded once)."""

    def __init__(self, stack: LocalHypStack, subscription: str = RECORD_SUBSCRIPTION) -> None:
        self.client = stack.subscriber()
        self.path = stack.subscription_path(subscription)
        self.client.create_subscription(
            request={"name": self.path, "topic": stack.topic_path(EVENTS_TOPIC), "ack_deadline_seconds": 60}
        )
        self.published: dict[str, Published] = {}
        self.errors = 0  # pulls or acks that failed (the emulator down): retried
        self.empty_since: float | None = None  # monotonic time of the first empty pull in a row
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = self.client.pull(request={"subscription": self.path, "max_messages": 1000}, timeout=10)
                received = list(response.received_messages)
                if received:
                    self.client.acknowledge(
                        request={"subscription": self.path, "ack_ids": [r.ack_id for r in received]}
                    )
            except Exception:  # the emulator is down or restarting: try again shortly
                self.errors += 1
                self._stop.wait(0.5)
                continue
            for r in received:
                m = r.message
                if m.message_id not in self.published:
                    attrs = m.attributes
                    self.published[m.message_id] = Published(
                        m.publish_time.timestamp(), attrs.get("event", ""), attrs.get("anomaly") == "1"
                    )
            if received:
                self.empty_since = None
            else:
                if self.empty_since is None:
                    self.empty_since = time.monotonic()
                self._stop.wait(0.2)

    def drain(self, idle_s: float = 3.0, timeout: float = 120.0) -> None:
        """Wait (bounded) until the subscription has stayed empty for ``idle_s``."""
        wait_for(
            lambda: self.empty_since is not None and time.monotonic() - self.empty_since >= idle_s,
            timeout,
            "the recording subscription to be drained",
            interval=0.2,
        )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def subscriptions(stack: LocalHypStack) -> dict[str, dict[str, float]]:
    """Backlog and oldest unacked age (s) of every subscription the stack drains (the emulator's /admin/state);
    empty when the emulator does not answer."""
    try:
        with urllib.request.urlopen(f"{stack.pubsub_rest_url}/admin/state", timeout=5) as resp:
            state = json.load(resp)
    except (OSError, ValueError):
        return {}
    out = {}
    for s in state.get("subscriptions", []):
        name = names.short(s["name"])
        if name not in UNDRAINED and name != RECORD_SUBSCRIPTION:
            out[name] = {"backlog": s.get("backlog", 0), "oldest_s": s.get("oldest_unacked_age_s", 0.0)}
    return out


def caught_up(stack: LocalHypStack, oldest_s: float = CAUGHT_UP_OLDEST_S) -> bool:
    subs = subscriptions(stack)
    return bool(subs) and all(s["oldest_s"] < oldest_s for s in subs.values())


def drained(stack: LocalHypStack) -> bool:
    subs = subscriptions(stack)
    return bool(subs) and all(s["backlog"] == 0 for s in subs.values())


@dataclass
class Kill:
    """One kill -9: when (wall clock, to attribute events by publish time), how long until `hyp up` had it
    healthy again, and how long after that until every subscription kept up again (None: not within the bound)."""

    service: str
    killed_at: float
    downtime_s: float
    catch_up_s: float | None
    load: float  # 1-minute load average at the kill


def kill_and_wait(
    stack: LocalHypStack, service: str, *, restart_timeout: float = 300.0, catch_up_timeout: float = 300.0
) -> Kill:
    """kill -9 ``service``'s process group, wait (bounded) for `hyp up` to restart it healthy, then for the
    backlogs to be caught up."""
    before = int(stack.supervision().get(service, {}).get("restarts", 0))
    killed_at, t0 = time.time(), time.monotonic()
    load = os.getloadavg()[0]
    stack.kill(service, signal.SIGKILL)
    stack.wait_restarted(service, restarts=before + 1, timeout=restart_timeout)
    back = time.monotonic()
    try:
        wait_for(lambda: caught_up(stack), catch_up_timeout, "the backlogs to catch up", interval=0.5)
        catch_up: float | None = time.monotonic() - back
    except TimeoutError:
        catch_up = None
    return Kill(service, killed_at, back - t0, catch_up, load)


def unhealthy(stack: LocalHypStack, skip: Sequence[str] = ("loadgen",)) -> dict[str, str]:
    """Services not running or not answering their health check, with why (empty: all up)."""
    out = {}
    for name, state in stack.supervision().items():
        if name in skip:
            continue
        if state.get("state") != "running":
            out[name] = f"{state.get('state')}: {state.get('last_exit')}"
            continue
        health = d.service(name).health
        reason = probe(health.url(port_offset=stack.offset), health.expect, timeout=5.0) if health else None
        if reason:
            out[name] = reason
    return out


@dataclass
class TableCount:
    table: str
    expected: int  # recorded messages that belong in the table
    lost: list[str] = field(default_factory=list)  # their ids not in the table
    duplicates: dict[str, int] = field(default_factory=dict)  # id -> rows beyond the first


def count(
    published: Mapping[str, Published], query: Query, tables: Sequence[str] = EVENT_TABLES + VERDICT_TABLES
) -> dict[str, TableCount]:
    """Each recorded message that belongs in a table (every event in the event tables, every purchase in the
    verdict tables) looked up there by message id: which are missing, which are there more than once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = {}
    for table in tables:
        wanted = [mid for mid, p in published.items() if table in EVENT_TABLES or p.event == "purchase"]
        ids = pa.array(wanted, type=pa.string())
        got = query(f"SELECT message_id, count(*) AS n FROM {table} GROUP BY message_id")
        present = pc.is_in(ids, value_set=got["message_id"])
        lost = ids.filter(pc.invert(present)).to_pylist()
        mine = got.filter(pc.is_in(got["message_id"], value_set=ids))
        twice = mine.filter(pc.greater(mine["n"], 1))
        dups = {m: n - 1 for m, n in zip(twice["message_id"].to_pylist(), twice["n"].to_pylist(), strict=True)}
        out[table] = TableCount(table, len(wanted), lost, dups)
    return out


@dataclass(frozen=True)
class Anomalies:
    table: str
    labelled: int  # labelled anomalies recorded
    scored: int  # of them, with a verdict row in the table
    flagged: int  # of them, with a verdict row saying anomaly


def anomalies(published: Mapping[str, Published], query: Query, table: str = "dataflow_anomaly") -> Anomalies:
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pa.array([mid for mid, p in published.items() if p.labelled], type=pa.string())
    got = query(f"SELECT message_id, bool_or(anomaly) AS flagged FROM {table} GROUP BY message_id")
    mine = got.filter(pc.is_in(got["message_id"], value_set=ids))
    flagged = pc.sum(pc.cast(mine["flagged"], pa.int64())).as_py() or 0
    return Anomalies(table, len(ids), mine.num_rows, flagged)


def phase_of(publish_s: float, kills: Sequence[Kill]) -> str:
    """The kill a message was published after (the last one before it), or "before" the first."""
    name = "before"
    for k in kills:
        if publish_s >= k.killed_at:
            name = k.service
    return name


def by_phase(
    ids: Mapping[str, int] | Sequence[str], published: Mapping[str, Published], kills: Sequence[Kill]
) -> dict[str, int]:
    """Messages (a list of ids, or id -> how many) per phase of the run."""
    out: dict[str, int] = {}
    items = ids.items() if isinstance(ids, Mapping) else ((i, 1) for i in ids)
    for mid, n in items:
        phase = phase_of(published[mid].publish_s, kills)
        out[phase] = out.get(phase, 0) + n
    return out


@dataclass
class ChaosRun:
    """One run's figures: the kills, the count per table, the anomalies, what stayed down."""

    kills: list[Kill]
    counts: dict[str, TableCount]
    anomalies: list[Anomalies]
    recorded: dict[str, Published]  # every message id published while recording
    down: dict[str, str]
    drain_s: float | None  # after the generator stopped: until every backlog was empty (None: not within the bound)
    recorder_errors: int
    loads: list[float] = field(default_factory=list)

    @property
    def published(self) -> int:
        return len(self.recorded)

    def lost_by_phase(self, table: str) -> dict[str, int]:
        return by_phase(self.counts[table].lost, self.recorded, self.kills)

    def duplicates_by_phase(self, table: str) -> dict[str, int]:
        return by_phase(self.counts[table].duplicates, self.recorded, self.kills)


def pause_generator(stack: LocalHypStack) -> None:
    """SIGSTOP the load generator: nothing more is published, and `hyp up` sees nothing exit."""
    stack.kill("loadgen", signal.SIGSTOP)


def resume_generator(stack: LocalHypStack) -> None:
    stack.kill("loadgen", signal.SIGCONT)


def run(
    stack: LocalHypStack,
    services: Sequence[str],
    query: Query,
    *,
    settle_s: float = 20.0,
    restart_timeout: float = 300.0,
    catch_up_timeout: float = 300.0,
    drain_timeout: float = 600.0,
    log: Callable[[str], None] = lambda line: None,
) -> ChaosRun:
    """Record what is published, kill each of ``services`` in turn (waiting for it to come back and the backlogs
    to catch up), pause the generator, wait (bounded) for the backlogs to empty, and count."""
    recorder = Recorder(stack)
    kills: list[Kill] = []
    loads = [os.getloadavg()[0]]
    paused = False
    try:
        wait_for(lambda: len(recorder.published) > 0, 120, "the first recorded event", interval=0.2)
        deadline = time.monotonic() + settle_s
        wait_for(lambda: time.monotonic() >= deadline, settle_s + 1, "the settle time", interval=0.5)
        for service in services:
            k = kill_and_wait(stack, service, restart_timeout=restart_timeout, catch_up_timeout=catch_up_timeout)
            kills.append(k)
            loads.append(os.getloadavg()[0])
            caught = f"{k.catch_up_s:.1f} s" if k.catch_up_s is not None else "not within the bound"
            log(f"{service}: down {k.downtime_s:.1f} s, caught up {caught}, {len(recorder.published):,} recorded")
        pause_generator(stack)
        paused = True
        t0 = time.monotonic()
        try:
            wait_for(lambda: drained(stack), drain_timeout, "every backlog to be empty", interval=1.0)
            drain_s: float | None = time.monotonic() - t0
        except TimeoutError:
            drain_s = None
            log(f"backlogs not empty after {drain_timeout:g} s: {subscriptions(stack)}")
        recorder.drain()
    finally:
        recorder.stop()
        if paused:  # so that `hyp down` stops it as it stops the others
            resume_generator(stack)
    published = dict(recorder.published)
    loads.append(os.getloadavg()[0])
    counts = count(published, query)
    found = [anomalies(published, query, t) for t in VERDICT_TABLES]
    return ChaosRun(kills, counts, found, published, unhealthy(stack), drain_s, recorder.errors, loads)
