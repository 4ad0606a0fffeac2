"""A subscription's delivery state and the delivery rules, as the subscription's own methods.

Leases, ordering keys, exactly-once, backoff, dead-lettering and retention expiry all live here;
the subscription holds integers only (messages stay in its topic's log). Every method runs with
the broker's lock held (``cond`` is a condition on that lock); the broker facade takes it.

What grows with the backlog is one bit per message: the unacked messages are a bitmap
(:class:`~services.pubsub.seqset.SeqSet`), and the ones never handed out are "every unacked message from
``cursor`` on", so no per-message queue exists. Only messages handed out cost more: a lease (``leased``),
a delivery count (``attempts``), and, once they come back (nack, expiry, backoff's end, an ordering key
still busy), a slot in the ``redo`` heap, which ``take`` serves before the cursor when it holds lower ones.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.pubsub import wire
from services.pubsub.errors import ApiError
from services.pubsub.filters import Predicate
from services.pubsub.records import Record, SubRecord
from services.pubsub.seqset import SeqSet
from services.pubsub.topic import TopicState
from services.pubsub.validation import DEFAULT_DEAD_LETTER_ATTEMPTS, duration_s, parse_ack_id

log = logging.getLogger("hyp.pubsub.broker")

# Backoff for push endpoints without a retry policy (local choice; the real service adapts).
PUSH_BACKOFF_MIN_S = 0.1
PUSH_BACKOFF_MAX_S = 60.0
_ACKED = Record.ACKED
_DELIVERED = Record.DELIVERED


class DeliveryHost(Protocol):
    """What a subscription needs from the broker that holds it."""

    def schedule(self, when: float) -> None:
        """Make housekeeping run at `when` (monotonic) at the latest."""

    def journal(self, sub: SubState, records: list[SubRecord]) -> None:
        """Persist delivery records of sub (no-op without a data dir)."""

    def dead_letter(self, topic: str, msg: Any) -> bool:
        """Publish msg to the dead-letter topic; False when that topic does not exist."""


@dataclass(eq=False)
class SubState:
    """One subscription's delivery state: integers only, messages live in the topic log."""

    uid: int
    pb: Any
    topic: TopicState
    predicate: Predicate | None
    cond: threading.Condition
    host: DeliveryHost
    unacked: SeqSet = field(default_factory=SeqSet)
    # every unacked seq >= cursor is ready (never handed out since the last start or seek)
    cursor: int = 0
    redo: list[int] = field(default_factory=list)  # heap of seqs < cursor ready again (entries may be stale)
    delayed: list[tuple[float, int]] = field(default_factory=list)  # heap of (due time, seq)
    leased: dict[int, tuple[float, int]] = field(default_factory=dict)  # seq -> (deadline, generation)
    attempts: dict[int, int] = field(default_factory=dict)
    busy_keys: dict[str, int] = field(default_factory=dict)  # ordering key -> leased or delayed count
    next_expiry: float = float("inf")
    start_seq: int = 0  # first seq published after creation
    # Delivery generation, the second half of every ack id. Starting at the creation time in microseconds
    # keeps ack ids of an earlier process (or of a deleted subscription of the same name) from ever naming
    # a new delivery, which exactly-once delivery relies on.
    generation: int = field(default_factory=lambda: time.time_ns() // 1000)
    delivered: int = 0
    acked: int = 0
    dead_lettered: int = 0
    expired: int = 0
    retention_expired: int = 0
    # called (broker lock held) whenever sub.cond is notified: wakes push delivery's event loop
    waker: Callable[[], None] | None = None

    # ---------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        return str(self.pb.name)

    @property
    def ordered(self) -> bool:
        return bool(self.pb.enable_message_ordering)

    @property
    def exactly_once(self) -> bool:
        return bool(self.pb.enable_exactly_once_delivery)

    @property
    def push(self) -> bool:
        return bool(self.pb.push_config.push_endpoint)

    @property
    def dead_letter_topic(self) -> str:
        return str(self.pb.dead_letter_policy.dead_letter_topic)

    @property
    def max_attempts(self) -> int:
        return int(self.pb.dead_letter_policy.max_delivery_attempts or DEFAULT_DEAD_LETTER_ATTEMPTS)

    def notify(self) -> None:
        """Wake everything waiting on this subscription (pulls, streams, push)."""
        self.cond.notify_all()
        if self.waker is not None:
            self.waker()

    def accepts(self, msg: Any) -> bool:
        return self.predicate is None or bool(self.predicate(msg.attributes))

    def low_water(self) -> int:
        """The lowest sequence number this subscription still needs (retention aside); drops the bitmap below it."""
        self.unacked.trim()
        low = self.unacked.min()
        return self.topic.next_seq if low is None else low

    def ready_count(self, limit: int) -> int:
        """How many messages are ready, counted up to limit (redo entries may be stale: an estimate)."""
        return min(limit, len(self.redo) + self.unacked.count_from(self.cursor, limit))

    def backoff(self, attempt: int, push: bool) -> float:
        rp = self.pb.retry_policy if self.pb.HasField("retry_policy") else None
        if rp is None and not push:
            return 0.0
        lo = (
            duration_s(rp.minimum_backoff)
            if rp and rp.HasField("minimum_backoff")
            else (10.0 if rp else PUSH_BACKOFF_MIN_S)
        )
        hi = (
            duration_s(rp.maximum_backoff)
            if rp and rp.HasField("maximum_backoff")
            else (600.0 if rp else PUSH_BACKOFF_MAX_S)
        )
        return float(min(hi, lo * (2 ** max(0, attempt - 1))))

    # ---------------------------------------------------------------- intake
    def offer(self, seq0: int, messages: Any) -> None:
        """Take in messages just appended to the topic at seq0, seq0+1, ... (those the filter accepts)."""
        if self.predicate is None:
            self.unacked.add_range(seq0, seq0 + len(messages))  # ready: every new seq is above the cursor
        else:
            pred = self.predicate
            self.unacked.update(seq0 + i for i, m in enumerate(messages) if pred(m.attributes))
        self.notify()

    def clear(self) -> None:
        self.unacked = SeqSet()
        self.cursor = 0
        self.redo.clear()
        self.delayed.clear()
        self.leased.clear()
        self.busy_keys.clear()

    def restore(self, unacked: SeqSet, attempts: dict[int, int]) -> None:
        """Replay from disk: these are outstanding (all ready), with these delivery counts so far."""
        self.unacked = unacked
        first = unacked.min()
        self.cursor = self.topic.next_seq if first is None else first
        self.redo = []
        self.attempts = {s: n for s, n in attempts.items() if s in unacked}

    def reset(self, chosen: SeqSet, low: int) -> None:
        """Seek: exactly `chosen` is outstanding now, everything else is acked."""
        self.clear()
        self.unacked = chosen
        first = chosen.min()
        end = self.topic.next_seq
        self.cursor = end if first is None else first
        self.next_expiry = float("inf")
        # everything below the first chosen message is acked: one watermark, then the holes above it
        self.host.journal(
            self, [(Record.WATERMARK, self.cursor), *((_ACKED, s) for s in chosen.gaps(self.cursor, end))]
        )
        self.notify()

    # ---------------------------------------------------------------- delivery
    def take(
        self, max_messages: int, deadline_s: float, max_bytes: int = 0, track: dict[int, int] | None = None
    ) -> list[bytes]:
        """Lease up to max_messages ready messages; returns encoded ReceivedMessage fields."""
        out: list[bytes] = []
        if max_messages <= 0 or not self.unacked:
            return out
        now = time.monotonic()
        deadline = now + deadline_s
        t = self.topic
        base = t.base
        ordered = self.ordered
        skipped: list[int] = []
        batch_keys: set[str] = set()
        report_attempt = self.pb.HasField("dead_letter_policy")
        size = 0
        records: list[SubRecord] = []
        picked: list[tuple[int, int, int]] = []  # seq, generation, delivery attempt to report (0: none)
        redo, unacked, leased, attempts = self.redo, self.unacked, self.leased, self.attempts
        nxt = unacked.first(self.cursor)  # the next never handed out, None: none
        while len(picked) < max_messages:
            if redo and (nxt is None or redo[0] < nxt):
                seq = heapq.heappop(redo)
                if seq not in unacked or seq in leased:
                    continue  # stale: acked or leased again since it came back
            elif nxt is not None:
                seq = nxt
                self.cursor = seq + 1
                nxt = unacked.first(seq + 1)
            else:
                break
            if ordered:
                key = t.keys[seq - base]
                if key:
                    if key in self.busy_keys and key not in batch_keys:
                        skipped.append(seq)
                        if len(skipped) > 10 * max_messages:
                            break
                        continue
                    batch_keys.add(key)
                    self.busy_keys[key] = self.busy_keys.get(key, 0) + 1
            self.generation += 1
            leased[seq] = (deadline, self.generation)
            attempt = attempts.get(seq, 0) + 1
            attempts[seq] = attempt
            records.append((_DELIVERED, seq))
            if track is not None:
                track[seq] = self.generation
            picked.append((seq, self.generation, attempt if report_attempt else 0))
            if max_bytes:
                size += t.size(seq)
                if size >= max_bytes:
                    break
        for s in skipped:
            heapq.heappush(redo, s)
        if picked:  # the bytes in one go: with --data-dir, one read per run of consecutive messages
            blobs = t.blobs([seq for seq, _gen, _attempt in picked])
            out = [
                wire.received_message(f"{seq}-{gen}".encode(), blob, attempt)
                for (seq, gen, attempt), blob in zip(picked, blobs, strict=True)
            ]
            self.delivered += len(out)
            self.next_expiry = min(self.next_expiry, deadline)
            self.host.schedule(deadline)
            self.host.journal(self, records)
        return out

    def ack(self, parsed: list[tuple[int, int]]) -> None:
        """Ack (seq, generation) pairs; any delivery of an outstanding message counts."""
        records: list[SubRecord] = []
        unacked, leased = self.unacked, self.leased
        for seq, _gen in parsed:
            if unacked.discard(seq):
                if leased.pop(seq, None) is not None:
                    self.release_key(seq)
                self.attempts.pop(seq, None)
                records.append((_ACKED, seq))
        self.acked += len(records)
        if records:
            self.host.journal(self, records)
            self.cond.notify_all()  # a stream at its max_outstanding_messages may take more now

    def release_key(self, seq: int) -> None:
        if self.ordered:
            key = self.topic.key(seq)
            if key and key in self.busy_keys:
                self.busy_keys[key] -= 1
                if self.busy_keys[key] <= 0:
                    del self.busy_keys[key]

    def modack(self, parsed: list[tuple[int, int]], seconds: float) -> None:
        """Extend the leases named (0 = nack); ack ids of older deliveries are ignored."""
        now = time.monotonic()
        for seq, gen in parsed:
            lease = self.leased.get(seq)
            if lease is None or lease[1] != gen:
                continue
            if seconds <= 0:
                self.take_back(seq, now)
            else:
                self.leased[seq] = (now + seconds, gen)
                self.next_expiry = min(self.next_expiry, now + seconds)
                self.host.schedule(now + seconds)
        self.notify()

    def give_back(self, parsed: list[tuple[int, int]]) -> None:
        """Return leased messages untried, ready at once and the attempt not counted: their write failed as a
        whole (a BigQuery subscription's table or service unavailable), not because of the messages."""
        for seq, gen in parsed:
            lease = self.leased.get(seq)
            if lease is None or lease[1] != gen:
                continue
            del self.leased[seq]
            self.release_key(seq)
            left = self.attempts.get(seq, 0) - 1
            if left > 0:
                self.attempts[seq] = left
            else:
                self.attempts.pop(seq, None)
            heapq.heappush(self.redo, seq)

    def nack(self, seq: int, gen: int, push: bool = False) -> None:
        lease = self.leased.get(seq)
        if lease is not None and lease[1] == gen:
            self.take_back(seq, time.monotonic(), push=push)
            self.notify()

    def take_back(self, seq: int, now: float, push: bool = False) -> None:
        """Take a leased message back (nack or expiry): dead-letter, delay by backoff, or make ready."""
        self.leased.pop(seq, None)
        attempt = self.attempts.get(seq, 0)
        if self.dead_letter_topic and attempt >= self.max_attempts:
            self.release_key(seq)
            self.dead_letter(seq, attempt)
            return
        wait = self.backoff(attempt, push)
        if wait > 0:
            heapq.heappush(self.delayed, (now + wait, seq))  # key stays busy until it is ready again
            self.host.schedule(now + wait)
        else:
            self.release_key(seq)
            heapq.heappush(self.redo, seq)
        if self.ordered:
            t = self.topic
            key = t.key(seq)
            if key:  # later messages of the same key are redelivered after this one, in order
                for other in [s for s in self.leased if s > seq and t.key(s) == key]:
                    self.leased.pop(other)
                    self.release_key(other)
                    heapq.heappush(self.redo, other)

    def dead_letter(self, seq: int, attempt: int) -> None:
        msg = self.topic.message(seq)
        publish_time = msg.publish_time.ToJsonString()
        msg.ClearField("message_id")
        msg.ClearField("publish_time")
        msg.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] = str(attempt)
        msg.attributes["CloudPubSubDeadLetterSourceSubscription"] = self.name.rsplit("/", 1)[-1]
        msg.attributes["CloudPubSubDeadLetterSourceSubscriptionProject"] = self.name.split("/")[1]
        msg.attributes["CloudPubSubDeadLetterSourceTopicPublishTime"] = publish_time
        if not self.host.dead_letter(self.dead_letter_topic, msg):
            log.warning("dead-letter topic missing; message kept", extra={"fields": {"subscription": self.name}})
            heapq.heappush(self.redo, seq)
            return
        self.unacked.discard(seq)
        self.attempts.pop(seq, None)
        self.dead_lettered += 1
        self.host.journal(self, [(_ACKED, seq)])

    # Exactly-once delivery: an ack id is good only for the current delivery of its message and only
    # until that delivery's ack deadline (as extended); anything else fails, and the message is not
    # redelivered while a valid delivery is outstanding.
    def live_lease(self, ack_id: str, now: float) -> tuple[int, int] | None:
        """(seq, generation) when ack_id names the current, unexpired delivery; None otherwise."""
        try:
            seq, gen = parse_ack_id(ack_id)
        except ApiError:
            return None
        lease = self.leased.get(seq)
        if lease is None or lease[1] != gen or lease[0] <= now:
            return None
        return seq, gen

    def ack_exactly_once(self, ack_ids: Iterable[str]) -> list[str]:
        """Ack the ack ids that name live deliveries; returns those that failed."""
        now = time.monotonic()
        good: list[tuple[int, int]] = []
        failed: list[str] = []
        for ack_id in ack_ids:
            lease = self.live_lease(ack_id, now)
            if lease is None:
                failed.append(ack_id)
            else:
                good.append(lease)
        if good:
            self.ack(good)
        return failed

    def modack_exactly_once(self, items: Iterable[tuple[str, float]]) -> list[str]:
        """Modify deadlines (0 = nack) of live deliveries; returns the ack ids that failed."""
        now = time.monotonic()
        failed: list[str] = []
        for ack_id, seconds in items:
            lease = self.live_lease(ack_id, now)
            if lease is None:
                failed.append(ack_id)
            else:
                self.modack([lease], seconds)
        return failed

    # ---------------------------------------------------------------- timers (housekeeping calls these)
    def expire_leases(self, now: float) -> bool:
        """Take back leases past their deadline; True when any was."""
        if not self.leased or now < self.next_expiry:
            return False
        changed = False
        nxt = float("inf")
        push = self.push
        for seq, (deadline, _gen) in list(self.leased.items()):
            if deadline <= now:
                self.expired += 1
                self.take_back(seq, now, push=push)
                changed = True
            else:
                nxt = min(nxt, deadline)
        self.next_expiry = nxt
        return changed

    def release_delayed(self, now: float) -> bool:
        """Make messages whose backoff has ended ready again; True when any was."""
        changed = False
        while self.delayed and self.delayed[0][0] <= now:
            _, seq = heapq.heappop(self.delayed)
            self.release_key(seq)
            if seq in self.unacked:
                heapq.heappush(self.redo, seq)
                changed = True
        return changed

    def next_due(self) -> float:
        """The next lease deadline or backoff end (monotonic), inf when none."""
        due = self.next_expiry if self.leased else float("inf")
        return min(due, self.delayed[0][0]) if self.delayed else due

    def expire_retention(self, wall: float, retention_s: float) -> None:
        """Drop unacked messages published more than retention_s (message_retention_duration) ago."""
        t = self.topic
        cutoff = t.first_seq_at(wall - retention_s)
        if not self.unacked or cutoff <= t.base:
            return
        low = self.low_water()
        if low >= cutoff:
            return
        unacked, leased = self.unacked, self.leased
        records: list[SubRecord] = []
        for seq in unacked.iter_range(low, cutoff):
            if unacked.discard(seq):
                if leased.pop(seq, None) is not None:
                    self.release_key(seq)
                self.attempts.pop(seq, None)
                records.append((_ACKED, seq))  # gone for good, also after a restart
        self.retention_expired += len(records)
        if records:
            self.host.journal(self, records)

    # ---------------------------------------------------------------- views
    def stats(self, now_wall: float) -> dict[str, Any]:
        low = self.low_water()
        t = self.topic
        oldest = now_wall - t.ts[low - t.base] if self.unacked and t.base <= low < t.next_seq else 0.0
        return {
            "name": self.name,
            "topic": self.pb.topic,
            "type": "push" if self.push else "bigquery" if self.pb.bigquery_config.table else "pull",
            "push_endpoint": self.pb.push_config.push_endpoint or None,
            "bigquery_table": self.pb.bigquery_config.table or None,
            "filter": self.pb.filter or None,
            "ordered": self.ordered,
            "dead_letter_topic": self.dead_letter_topic or None,
            "backlog": len(self.unacked),
            "outstanding": len(self.leased),
            "oldest_unacked_age_s": round(max(0.0, oldest), 3),
            "delivered_total": self.delivered,
            "acked_total": self.acked,
            "dead_lettered_total": self.dead_lettered,
            "expired_total": self.expired,
            "retention_expired_total": self.retention_expired,
            "detached": self.pb.detached,
        }
