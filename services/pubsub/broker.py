"""The broker: topics, subscriptions, snapshots and message delivery, in memory, thread-safe.

Storage model (cheap for large backlogs): each topic keeps one append-only log of serialized
``PubsubMessage`` bytes indexed by a per-topic sequence number; a subscription holds only
integers: the set of unacknowledged sequence numbers, a heap of those ready for delivery, the
leases (seq -> deadline, delivery generation) and delivery counts. The topic log is truncated
below the lowest sequence any subscription, snapshot or retention window still needs.

Every method takes and returns raw protobuf messages (``google.pubsub_v1.types.X.pb()``) and
raises :class:`~services.pubsub.errors.ApiError` with the real service's status codes; the gRPC
and REST front ends are thin translations.
"""

from __future__ import annotations

import bisect
import heapq
import logging
import threading
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.pubsub_v1 import types

from services.pubsub import names, wire
from services.pubsub.errors import (
    ApiError,
    already_exists,
    failed_precondition,
    invalid,
    invalid_ack_ids,
    not_found,
)
from services.pubsub.filters import Predicate, compile_filter

log = logging.getLogger("hyp.pubsub.broker")

Topic = types.Topic.pb()
Subscription = types.Subscription.pb()
Snapshot = types.Snapshot.pb()
PubsubMessage = types.PubsubMessage.pb()
PullResponse = types.PullResponse.pb()

DEFAULT_ACK_DEADLINE_S = 10
DEFAULT_DEAD_LETTER_ATTEMPTS = 5
# Backoff for push endpoints without a retry policy (local choice; the real service adapts).
PUSH_BACKOFF_MIN_S = 0.1
PUSH_BACKOFF_MAX_S = 60.0
_TOPIC_IMMUTABLE = {"name"}
_SUB_IMMUTABLE = {"name", "topic", "filter", "enable_message_ordering"}


def _duration_s(d: Any) -> float:
    return d.seconds + d.nanos / 1e9


@dataclass
class TopicState:
    """One topic and its message log (serialized PubsubMessage bytes, publish times, ordering keys)."""

    uid: int
    pb: Any
    base: int = 0
    data: list[bytes] = field(default_factory=list)
    ts: array = field(default_factory=lambda: array("d"))
    keys: list[str] = field(default_factory=list)
    subs: dict[str, SubState] = field(default_factory=dict)
    deleted: bool = False
    published: int = 0
    published_bytes: int = 0

    @property
    def next_seq(self) -> int:
        return self.base + len(self.data)

    def message(self, seq: int) -> Any:
        return PubsubMessage.FromString(self.data[seq - self.base])

    def first_seq_at(self, t: float) -> int:
        """The first sequence number published at or after time t."""
        return self.base + bisect.bisect_left(self.ts, t)


@dataclass
class SubState:
    """One subscription's delivery state: integers only, messages live in the topic log."""

    uid: int
    pb: Any
    topic: TopicState
    predicate: Predicate | None
    cond: threading.Condition
    unacked: set[int] = field(default_factory=set)
    ready: list[int] = field(default_factory=list)  # heap of seqs
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

    @property
    def name(self) -> str:
        return self.pb.name

    @property
    def ordered(self) -> bool:
        return self.pb.enable_message_ordering

    @property
    def exactly_once(self) -> bool:
        return self.pb.enable_exactly_once_delivery

    @property
    def dead_letter_topic(self) -> str:
        return self.pb.dead_letter_policy.dead_letter_topic

    @property
    def max_attempts(self) -> int:
        return self.pb.dead_letter_policy.max_delivery_attempts or DEFAULT_DEAD_LETTER_ATTEMPTS

    def notify(self) -> None:
        """Wake everything waiting on this subscription (pulls, streams, push). Lock held."""
        self.cond.notify_all()
        if self.waker is not None:
            self.waker()

    def accepts(self, msg: Any) -> bool:
        return self.predicate is None or self.predicate(msg.attributes)

    def low_water(self) -> int:
        """The lowest sequence number this subscription still needs (retention aside)."""
        low = self.topic.next_seq
        ready = self.ready
        while ready and (ready[0] not in self.unacked or ready[0] in self.leased):
            heapq.heappop(ready)
        if ready:
            low = min(low, ready[0])
        if self.leased:
            low = min(low, min(self.leased))
        if self.delayed:
            low = min(low, min(s for _, s in self.delayed))
        return low

    def backoff(self, attempt: int, push: bool) -> float:
        rp = self.pb.retry_policy if self.pb.HasField("retry_policy") else None
        if rp is None and not push:
            return 0.0
        lo = (
            _duration_s(rp.minimum_backoff)
            if rp and rp.HasField("minimum_backoff")
            else (10.0 if rp else PUSH_BACKOFF_MIN_S)
        )
        hi = (
            _duration_s(rp.maximum_backoff)
            if rp and rp.HasField("maximum_backoff")
            else (600.0 if rp else PUSH_BACKOFF_MAX_S)
        )
        return min(hi, lo * (2 ** max(0, attempt - 1)))


@dataclass
class SnapshotState:
    pb: Any
    topic: TopicState
    seqs: array  # unacked seqs of the subscription at creation, sorted
    end: int  # topic.next_seq at creation: everything from here on is included

    def low(self) -> int:
        return self.seqs[0] if self.seqs else self.end


class Broker:
    """All state of the emulator. One lock; waiters use per-subscription conditions on it."""

    def __init__(self, store: Any | None = None) -> None:
        self.lock = threading.RLock()
        self.topics: dict[str, TopicState] = {}
        self.subs: dict[str, SubState] = {}
        self.snapshots: dict[str, SnapshotState] = {}
        self.store = store
        self._next_uid = 1
        self._next_id = time.time_ns() // 1000
        self.started = time.time()
        self.on_push_subscription: Callable[[SubState], None] | None = None
        # Housekeeping sleeps on `timer` until `due` (the earliest lease deadline or backoff end, monotonic);
        # whoever sets an earlier one notifies it.
        self.timer = threading.Condition(self.lock)
        self.due = float("inf")

    # ---------------------------------------------------------------- helpers
    def _uid(self) -> int:
        self._next_uid += 1
        return self._next_uid - 1

    def _topic(self, name: str) -> TopicState:
        names.parse(name, "topics")
        t = self.topics.get(name)
        if t is None:
            raise not_found(f"Resource not found (resource={name.rsplit('/', 1)[-1]}).")
        return t

    def _sub(self, name: str) -> SubState:
        names.parse(name, "subscriptions")
        s = self.subs.get(name)
        if s is None:
            raise not_found(f"Resource not found (resource={name.rsplit('/', 1)[-1]}).")
        return s

    def _save_state(self) -> None:
        if self.store is not None:
            self.store.save_state(self)

    def _schedule(self, when: float) -> None:
        """Make housekeeping run at `when` (monotonic) at the latest. Lock held."""
        if when < self.due:
            self.due = when
            self.timer.notify()

    def _sub_log(self, sub: SubState, records: Iterable[tuple[int, int]]) -> None:
        if self.store is not None:
            self.store.append_sub(sub.uid, records)

    # ---------------------------------------------------------------- topics
    def create_topic(self, req: Any) -> Any:
        names.parse(req.name, "topics")
        self._check_retention(req, topic=True)
        with self.lock:
            if req.name in self.topics:
                raise already_exists("Topic already exists")
            pb = Topic()
            pb.CopyFrom(req)
            self.topics[req.name] = TopicState(uid=self._uid(), pb=pb)
            self._save_state()
            return pb

    def get_topic(self, name: str) -> Any:
        with self.lock:
            return self._topic(name).pb

    def update_topic(self, topic: Any, mask: Any) -> Any:
        with self.lock:
            t = self._topic(topic.name)
            self._apply_mask(t.pb, topic, mask, Topic, _TOPIC_IMMUTABLE)
            self._check_retention(t.pb, topic=True)
            self._save_state()
            return t.pb

    def list_topics(self, project: str) -> list[Any]:
        names.parse_project(project)
        with self.lock:
            return [t.pb for n, t in sorted(self.topics.items()) if n.startswith(project + "/")]

    def list_topic_subscriptions(self, topic: str) -> list[str]:
        with self.lock:
            return sorted(self._topic(topic).subs)

    def list_topic_snapshots(self, topic: str) -> list[str]:
        with self.lock:
            t = self._topic(topic)
            return sorted(n for n, s in self.snapshots.items() if s.topic is t)

    def delete_topic(self, name: str) -> None:
        with self.lock:
            t = self._topic(name)
            del self.topics[name]
            t.deleted = True
            for sub in t.subs.values():
                sub.pb.topic = names.DELETED_TOPIC
            self._save_state()

    def detach_subscription(self, name: str) -> None:
        with self.lock:
            sub = self._sub(name)
            sub.pb.detached = True
            sub.topic.subs.pop(sub.name, None)
            self._clear(sub)
            self._save_state()
            sub.notify()

    # ---------------------------------------------------------------- subscriptions
    def create_subscription(self, req: Any) -> Any:
        names.parse(req.name, "subscriptions")
        names.parse(req.topic, "topics")
        pb = Subscription()
        pb.CopyFrom(req)
        predicate = self._check_subscription(pb)
        with self.lock:
            if req.name in self.subs:
                raise already_exists("Subscription already exists")
            topic = self._topic(req.topic)
            sub = SubState(
                uid=self._uid(), pb=pb, topic=topic, predicate=predicate, cond=threading.Condition(self.lock)
            )
            sub.start_seq = topic.next_seq
            self.subs[pb.name] = sub
            topic.subs[pb.name] = sub
            self._sub_log(sub, [(ord("W"), topic.next_seq)])
            self._save_state()
        if pb.push_config.push_endpoint and self.on_push_subscription:
            self.on_push_subscription(sub)
        return pb

    def _check_subscription(self, pb: Any) -> Predicate | None:
        if pb.ack_deadline_seconds == 0:
            pb.ack_deadline_seconds = DEFAULT_ACK_DEADLINE_S
        if not names.MIN_ACK_DEADLINE_S <= pb.ack_deadline_seconds <= names.MAX_ACK_DEADLINE_S:
            raise invalid(
                f"Invalid ack_deadline_seconds: {pb.ack_deadline_seconds} "
                f"(must be between {names.MIN_ACK_DEADLINE_S} and {names.MAX_ACK_DEADLINE_S})"
            )
        self._check_retention(pb, topic=False)
        if not pb.HasField("message_retention_duration"):
            pb.message_retention_duration.seconds = names.DEFAULT_RETENTION_S
        if pb.HasField("dead_letter_policy"):
            dlp = pb.dead_letter_policy
            names.parse(dlp.dead_letter_topic, "topics")
            if dlp.max_delivery_attempts == 0:
                dlp.max_delivery_attempts = DEFAULT_DEAD_LETTER_ATTEMPTS
            if not 5 <= dlp.max_delivery_attempts <= 100:
                raise invalid("Invalid max_delivery_attempts: must be between 5 and 100")
        if pb.HasField("retry_policy"):
            rp = pb.retry_policy
            lo, hi = _duration_s(rp.minimum_backoff), _duration_s(rp.maximum_backoff)
            if not 0 <= lo <= 600 or not 0 <= hi <= 600 or (rp.HasField("maximum_backoff") and hi < lo):
                raise invalid("Invalid retry_policy: backoffs must be within 0-600s and minimum <= maximum")
        endpoint = pb.push_config.push_endpoint
        if endpoint and not endpoint.startswith(("http://", "https://")):
            raise invalid(f"Invalid push_endpoint: {endpoint!r} (must be an http or https URL)")
        return compile_filter(pb.filter)

    @staticmethod
    def _check_retention(pb: Any, *, topic: bool) -> None:
        if pb.HasField("message_retention_duration"):
            s = _duration_s(pb.message_retention_duration)
            if not 600 <= s <= names.MAX_RETENTION_S:
                raise invalid("Invalid message_retention_duration: must be between 10 minutes and 31 days")

    @staticmethod
    def _apply_mask(target: Any, source: Any, mask: Any, cls: Any, immutable: set[str]) -> None:
        if not mask.paths:
            raise invalid("The update_mask in the request must not be empty")
        if not mask.IsValidForDescriptor(cls.DESCRIPTOR):
            raise invalid(f"Invalid update_mask paths: {list(mask.paths)}")
        bad = [p for p in mask.paths if p.split(".")[0] in immutable]
        if bad:
            raise invalid(f"Invalid update_mask: {bad} cannot be updated")
        mask.MergeMessage(source, target, replace_message_field=True, replace_repeated_field=True)

    def get_subscription(self, name: str) -> Any:
        with self.lock:
            return self._sub(name).pb

    def update_subscription(self, subscription: Any, mask: Any) -> Any:
        with self.lock:
            sub = self._sub(subscription.name)
            pb = Subscription()
            pb.CopyFrom(sub.pb)
            self._apply_mask(pb, subscription, mask, Subscription, _SUB_IMMUTABLE)
            self._check_subscription(pb)
            was_push = bool(sub.pb.push_config.push_endpoint)
            sub.pb = pb
            self._save_state()
            sub.notify()
        if pb.push_config.push_endpoint and not was_push and self.on_push_subscription:
            self.on_push_subscription(sub)
        return pb

    def modify_push_config(self, name: str, push_config: Any) -> None:
        mask = field_mask_pb2.FieldMask(paths=["push_config"])
        self.update_subscription(Subscription(name=name, push_config=push_config), mask)

    def list_subscriptions(self, project: str) -> list[Any]:
        names.parse_project(project)
        with self.lock:
            return [s.pb for n, s in sorted(self.subs.items()) if n.startswith(project + "/")]

    def delete_subscription(self, name: str) -> None:
        with self.lock:
            sub = self._sub(name)
            del self.subs[name]
            sub.topic.subs.pop(name, None)
            self._clear(sub)
            if self.store is not None:
                self.store.drop_sub(sub.uid)
            self._save_state()
            sub.notify()

    def _clear(self, sub: SubState) -> None:
        sub.unacked.clear()
        sub.ready.clear()
        sub.delayed.clear()
        sub.leased.clear()
        sub.busy_keys.clear()

    # ---------------------------------------------------------------- publish
    def publish(self, topic_name: str, messages: Any) -> list[str]:
        """Append messages (PubsubMessage pbs, modified in place) and fan them out; returns their ids."""
        if not messages:
            raise invalid("The request contains no messages")
        if len(messages) > names.MAX_MESSAGES_PER_PUBLISH:
            raise invalid(f"The request contains more than {names.MAX_MESSAGES_PER_PUBLISH} messages")
        for m in messages:
            if not m.data and not m.attributes:
                raise invalid("Some messages contain no data and no attributes")
            if len(m.data) > names.MAX_MESSAGE_BYTES:
                raise invalid(f"Message size exceeds the limit: {names.MAX_MESSAGE_BYTES} bytes")
            if m.attributes:
                self._check_attributes(m.attributes)
            if m.ordering_key and len(m.ordering_key.encode()) > names.MAX_ORDERING_KEY_BYTES:
                raise invalid(f"Ordering key exceeds the limit: {names.MAX_ORDERING_KEY_BYTES} bytes")
        with self.lock:
            t = self._topic(topic_name)
            return self._append(t, messages)

    @staticmethod
    def _check_attributes(attrs: Any) -> None:
        if len(attrs) > names.MAX_ATTRIBUTES:
            raise invalid(f"Some messages have more than {names.MAX_ATTRIBUTES} attributes")
        for k, v in attrs.items():
            if not k:
                raise invalid("Attribute keys must not be empty")
            if len(k.encode()) > names.MAX_ATTRIBUTE_KEY_BYTES:
                raise invalid(f"Attribute key {k[:40]!r} exceeds {names.MAX_ATTRIBUTE_KEY_BYTES} bytes")
            if len(v.encode()) > names.MAX_ATTRIBUTE_VALUE_BYTES:
                raise invalid(f"Attribute value of {k[:40]!r} exceeds {names.MAX_ATTRIBUTE_VALUE_BYTES} bytes")
            if k.startswith("goog"):
                raise invalid(f"Attribute key {k[:40]!r} must not start with 'goog'")

    def _append(self, t: TopicState, messages: Any, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        ts = timestamp_pb2.Timestamp()
        ts.FromNanoseconds(int(now * 1e9))
        seq0 = t.next_seq
        first_id = self._next_id
        self._next_id += len(messages)
        blobs: list[bytes] = []
        keys: list[str] = []
        for i, m in enumerate(messages):
            m.message_id = str(first_id + i)
            m.publish_time.CopyFrom(ts)
            blobs.append(m.SerializeToString())
            keys.append(m.ordering_key)
        t.data.extend(blobs)
        t.ts.extend([now] * len(blobs))
        t.keys.extend(keys)
        t.published += len(blobs)
        t.published_bytes += sum(map(len, blobs))
        if self.store is not None:
            self.store.append_messages(t.uid, blobs)
        seqs = range(seq0, seq0 + len(blobs))
        for sub in t.subs.values():
            if sub.predicate is None:
                sub.unacked.update(seqs)
                sub.ready.extend(seqs)  # every new seq is larger than all in the heap: still a heap
            else:
                chosen = [seq0 + i for i, m in enumerate(messages) if sub.predicate(m.attributes)]
                sub.unacked.update(chosen)
                sub.ready.extend(chosen)
            sub.notify()
        return [str(first_id + i) for i in range(len(blobs))]

    # ---------------------------------------------------------------- delivery
    def pull_sub(self, name: str) -> SubState:
        with self.lock:
            sub = self._sub(name)
            if sub.pb.detached:
                raise failed_precondition(f"Subscription is detached: {name}")
            return sub

    def take(
        self, sub: SubState, max_messages: int, deadline_s: float, max_bytes: int = 0, track: dict | None = None
    ) -> list[bytes]:
        """Lease up to max_messages ready messages; returns encoded ReceivedMessage fields. Lock held."""
        out: list[bytes] = []
        if max_messages <= 0 or not sub.ready:
            return out
        now = time.monotonic()
        deadline = now + deadline_s
        t = sub.topic
        base = t.base
        ordered = sub.ordered
        skipped: list[int] = []
        batch_keys: set[str] = set()
        report_attempt = sub.pb.HasField("dead_letter_policy")
        size = 0
        records: list[tuple[int, int]] = []
        ready, unacked, leased, attempts = sub.ready, sub.unacked, sub.leased, sub.attempts
        while ready and len(out) < max_messages:
            seq = heapq.heappop(ready)
            if seq not in unacked or seq in leased:
                continue
            if ordered:
                key = t.keys[seq - base]
                if key:
                    if key in sub.busy_keys and key not in batch_keys:
                        skipped.append(seq)
                        if len(skipped) > 10 * max_messages:
                            break
                        continue
                    batch_keys.add(key)
                    sub.busy_keys[key] = sub.busy_keys.get(key, 0) + 1
            sub.generation += 1
            leased[seq] = (deadline, sub.generation)
            attempt = attempts.get(seq, 0) + 1
            attempts[seq] = attempt
            records.append((68, seq))  # 'D'
            if track is not None:
                track[seq] = sub.generation
            blob = t.data[seq - base]
            out.append(
                wire.received_message(f"{seq}-{sub.generation}".encode(), blob, attempt if report_attempt else 0)
            )
            size += len(blob)
            if max_bytes and size >= max_bytes:
                break
        for s in skipped:
            heapq.heappush(ready, s)
        if out:
            sub.delivered += len(out)
            sub.next_expiry = min(sub.next_expiry, deadline)
            self._schedule(deadline)
            self._sub_log(sub, records)
        return out

    def pull(self, name: str, max_messages: int, return_immediately: bool, wait_s: float) -> list[bytes]:
        if max_messages <= 0:
            raise invalid("max_messages must be a positive number")
        n = min(max_messages, names.MAX_PULL_MESSAGES)
        end = time.monotonic() + wait_s
        with self.lock:
            sub = self.pull_sub(name)
            while True:
                out = self.take(sub, n, sub.pb.ack_deadline_seconds)
                if out or return_immediately:
                    return out
                left = end - time.monotonic()
                if left <= 0 or self.subs.get(name) is not sub:
                    return out
                sub.cond.wait(left)

    @staticmethod
    def _parse_ack_id(ack_id: str) -> tuple[int, int]:
        try:
            seq, gen = ack_id.split("-", 1)
            return int(seq), int(gen)
        except ValueError:
            raise invalid(f"Invalid ack ID: {ack_id[:60]!r}") from None

    def acknowledge(self, name: str, ack_ids: Iterable[str]) -> None:
        ack_ids = list(ack_ids)
        if not ack_ids:
            raise invalid("No ack ids given")
        with self.lock:
            sub = self._sub(name)
            if sub.exactly_once:
                failed = self.ack_exactly_once(sub, ack_ids)
                if failed:
                    raise invalid_ack_ids(failed)
                return
        parsed = [self._parse_ack_id(a) for a in ack_ids]
        with self.lock:
            self._ack(sub, parsed)

    # Exactly-once delivery: an ack id is good only for the current delivery of its message and only
    # until that delivery's ack deadline (as extended); anything else fails, and the message is not
    # redelivered while a valid delivery is outstanding.
    def _live_lease(self, sub: SubState, ack_id: str, now: float) -> tuple[int, int] | None:
        """(seq, generation) when ack_id names the current, unexpired delivery; None otherwise. Lock held."""
        try:
            seq, gen = self._parse_ack_id(ack_id)
        except ApiError:
            return None
        lease = sub.leased.get(seq)
        if lease is None or lease[1] != gen or lease[0] <= now:
            return None
        return seq, gen

    def ack_exactly_once(self, sub: SubState, ack_ids: Iterable[str]) -> list[str]:
        """Ack the ack ids that name live deliveries; returns those that failed. Lock held."""
        now = time.monotonic()
        good: list[tuple[int, int]] = []
        failed: list[str] = []
        for ack_id in ack_ids:
            lease = self._live_lease(sub, ack_id, now)
            if lease is None:
                failed.append(ack_id)
            else:
                good.append(lease)
        if good:
            self._ack(sub, good)
        return failed

    def modack_exactly_once(self, sub: SubState, items: Iterable[tuple[str, float]]) -> list[str]:
        """Modify deadlines (0 = nack) of live deliveries; returns the ack ids that failed. Lock held."""
        now = time.monotonic()
        failed: list[str] = []
        for ack_id, seconds in items:
            lease = self._live_lease(sub, ack_id, now)
            if lease is None:
                failed.append(ack_id)
            else:
                self._modack(sub, [lease], seconds)
        return failed

    def _ack(self, sub: SubState, parsed: list[tuple[int, int]]) -> None:
        records = []
        unacked, leased = sub.unacked, sub.leased
        for seq, _gen in parsed:
            if seq in unacked:
                unacked.discard(seq)
                if leased.pop(seq, None) is not None:
                    self._release_key(sub, seq)
                sub.attempts.pop(seq, None)
                records.append((65, seq))  # 'A'
        sub.acked += len(records)
        self._sub_log(sub, records)
        if records:
            sub.cond.notify_all()  # a stream at its max_outstanding_messages may take more now

    def _release_key(self, sub: SubState, seq: int) -> None:
        if sub.ordered:
            key = sub.topic.keys[seq - sub.topic.base]
            if key and key in sub.busy_keys:
                sub.busy_keys[key] -= 1
                if sub.busy_keys[key] <= 0:
                    del sub.busy_keys[key]

    def modify_ack_deadline(self, name: str, ack_ids: Iterable[str], seconds: int) -> None:
        ack_ids = list(ack_ids)
        if not 0 <= seconds <= names.MAX_ACK_DEADLINE_S:
            raise invalid(f"Invalid ack_deadline_seconds: {seconds} (must be between 0 and 600)")
        with self.lock:
            sub = self._sub(name)
            if sub.exactly_once:
                failed = self.modack_exactly_once(sub, ((a, seconds) for a in ack_ids))
                if failed:
                    raise invalid_ack_ids(failed)
                return
        parsed = [self._parse_ack_id(a) for a in ack_ids]
        with self.lock:
            self._modack(sub, parsed, seconds)

    def _modack(self, sub: SubState, parsed: list[tuple[int, int]], seconds: float) -> None:
        now = time.monotonic()
        for seq, gen in parsed:
            lease = sub.leased.get(seq)
            if lease is None or lease[1] != gen:
                continue
            if seconds <= 0:
                self._return(sub, seq, now)
            else:
                sub.leased[seq] = (now + seconds, gen)
                sub.next_expiry = min(sub.next_expiry, now + seconds)
                self._schedule(now + seconds)
        sub.notify()

    def _return(self, sub: SubState, seq: int, now: float, push: bool = False) -> None:
        """Take a leased message back (nack or expiry): dead-letter, delay by backoff, or make ready."""
        sub.leased.pop(seq, None)
        attempt = sub.attempts.get(seq, 0)
        if sub.dead_letter_topic and attempt >= sub.max_attempts:
            self._release_key(sub, seq)
            self._dead_letter(sub, seq, attempt)
            return
        wait = sub.backoff(attempt, push)
        if wait > 0:
            heapq.heappush(sub.delayed, (now + wait, seq))  # key stays busy until it is ready again
            self._schedule(now + wait)
        else:
            self._release_key(sub, seq)
            heapq.heappush(sub.ready, seq)
        if sub.ordered:
            key = sub.topic.keys[seq - sub.topic.base]
            if key:  # later messages of the same key are redelivered after this one, in order
                for other in [s for s in sub.leased if s > seq and sub.topic.keys[s - sub.topic.base] == key]:
                    sub.leased.pop(other)
                    self._release_key(sub, other)
                    heapq.heappush(sub.ready, other)

    def _dead_letter(self, sub: SubState, seq: int, attempt: int) -> None:
        msg = sub.topic.message(seq)
        dl = self.topics.get(sub.dead_letter_topic)
        if dl is None:
            log.warning("dead-letter topic missing; message kept", extra={"fields": {"subscription": sub.name}})
            heapq.heappush(sub.ready, seq)
            return
        publish_time = msg.publish_time.ToJsonString()
        msg.ClearField("message_id")
        msg.ClearField("publish_time")
        msg.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] = str(attempt)
        msg.attributes["CloudPubSubDeadLetterSourceSubscription"] = sub.name.rsplit("/", 1)[-1]
        msg.attributes["CloudPubSubDeadLetterSourceSubscriptionProject"] = sub.name.split("/")[1]
        msg.attributes["CloudPubSubDeadLetterSourceTopicPublishTime"] = publish_time
        self._append(dl, [msg])
        sub.unacked.discard(seq)
        sub.attempts.pop(seq, None)
        sub.dead_lettered += 1
        self._sub_log(sub, [(65, seq)])

    def nack(self, sub: SubState, seq: int, gen: int, push: bool = False) -> None:
        with self.lock:
            lease = sub.leased.get(seq)
            if lease is not None and lease[1] == gen:
                self._return(sub, seq, time.monotonic(), push=push)
                sub.notify()

    # ---------------------------------------------------------------- housekeeping
    def tick(self) -> None:
        """Expire leases and release delayed messages that are due; sets `due` to the next such time."""
        now = time.monotonic()
        with self.lock:
            due = float("inf")
            for sub in list(self.subs.values()):
                changed = False
                if sub.leased and now >= sub.next_expiry:
                    nxt = float("inf")
                    for seq, (deadline, _gen) in list(sub.leased.items()):
                        if deadline <= now:
                            sub.expired += 1
                            self._return(sub, seq, now, push=bool(sub.pb.push_config.push_endpoint))
                            changed = True
                        else:
                            nxt = min(nxt, deadline)
                    sub.next_expiry = nxt
                while sub.delayed and sub.delayed[0][0] <= now:
                    _, seq = heapq.heappop(sub.delayed)
                    self._release_key(sub, seq)
                    if seq in sub.unacked:
                        heapq.heappush(sub.ready, seq)
                        changed = True
                if changed:
                    sub.notify()
                due = min(due, sub.next_expiry if sub.leased else due, sub.delayed[0][0] if sub.delayed else due)
            self.due = due

    def compact(self, wall: float | None = None) -> None:
        """Expire messages past their subscription's retention, drop the prefix of each topic log that
        nothing needs any more, expire snapshots. Called every few seconds (wall: now, for tests)."""
        wall = time.time() if wall is None else wall
        with self.lock:
            self._expire_snapshots()
            for t in list(self.topics.values()) + [s.topic for s in self.subs.values() if s.topic.deleted]:
                low = t.next_seq
                for sub in t.subs.values():
                    self._expire_retention(sub, wall)
                    low = min(low, sub.low_water())
                    if self.store is not None:
                        self.store.maybe_rewrite_sub(sub)
                    if sub.pb.retain_acked_messages:
                        low = min(low, t.first_seq_at(wall - _duration_s(sub.pb.message_retention_duration)))
                if t.pb.HasField("message_retention_duration"):
                    low = min(low, t.first_seq_at(wall - _duration_s(t.pb.message_retention_duration)))
                for snap in self.snapshots.values():
                    if snap.topic is t:
                        low = min(low, snap.low())
                drop = low - t.base
                if drop > 0 and (drop >= 4096 or drop == len(t.data)):
                    del t.data[:drop]
                    del t.ts[:drop]
                    del t.keys[:drop]
                    t.base = low
                    if self.store is not None:
                        self.store.truncated(t)

    def _expire_retention(self, sub: SubState, wall: float) -> None:
        """Drop unacked messages published longer than message_retention_duration ago. Lock held."""
        t = sub.topic
        cutoff = t.first_seq_at(wall - _duration_s(sub.pb.message_retention_duration))
        if not sub.unacked or cutoff <= t.base:
            return
        low = sub.low_water()
        if low >= cutoff:
            return
        unacked, leased = sub.unacked, sub.leased
        records = []
        for seq in range(low, cutoff):
            if seq in unacked:
                unacked.discard(seq)
                if leased.pop(seq, None) is not None:
                    self._release_key(sub, seq)
                sub.attempts.pop(seq, None)
                records.append((65, seq))  # 'A': gone for good, also after a restart
        sub.retention_expired += len(records)
        self._sub_log(sub, records)

    # ---------------------------------------------------------------- seek and snapshots
    def seek(self, name: str, when: Any | None, snapshot: str | None) -> None:
        with self.lock:
            sub = self.pull_sub(name)
            t = sub.topic
            if snapshot is not None:
                names.parse(snapshot, "snapshots")
                snap = self.snapshots.get(snapshot)
                if snap is None:
                    raise not_found(f"Resource not found (resource={snapshot.rsplit('/', 1)[-1]}).")
                if snap.topic is not t:
                    raise failed_precondition("The snapshot's topic is not the subscription's topic")
                candidates = [s for s in snap.seqs if s >= t.base] + list(range(max(snap.end, t.base), t.next_seq))
                low = snap.low()
            else:
                if when is None:
                    raise invalid("Seek needs a time or a snapshot")
                low = max(t.first_seq_at(when.ToNanoseconds() / 1e9), t.base)
                if not t.pb.HasField("message_retention_duration"):
                    low = max(low, self._start_seq(sub))
                candidates = list(range(low, t.next_seq))
            if sub.predicate is not None:
                candidates = [s for s in candidates if sub.accepts(t.message(s))]
            chosen = set(candidates)
            self._clear(sub)
            sub.unacked = chosen
            sub.ready = sorted(chosen)
            sub.next_expiry = float("inf")
            records = [(ord("W"), low)] + [(65, s) for s in range(low, t.next_seq) if s not in chosen]
            self._sub_log(sub, records)
            sub.notify()

    @staticmethod
    def _start_seq(sub: SubState) -> int:
        return sub.start_seq

    def create_snapshot(self, name: str, subscription: str, labels: dict[str, str]) -> Any:
        names.parse(name, "snapshots")
        with self.lock:
            sub = self.pull_sub(subscription)
            if name in self.snapshots:
                raise already_exists("Snapshot already exists")
            t = sub.topic
            if t.deleted:
                raise failed_precondition("The subscription's topic was deleted")
            seqs = array("q", sorted(sub.unacked))
            oldest = t.ts[seqs[0] - t.base] if seqs else time.time()
            pb = Snapshot(name=name, topic=t.pb.name, labels=labels)
            pb.expire_time.FromNanoseconds(int((oldest + names.DEFAULT_RETENTION_S) * 1e9))
            self.snapshots[name] = SnapshotState(pb=pb, topic=t, seqs=seqs, end=t.next_seq)
            self._save_state()
            return pb

    def get_snapshot(self, name: str) -> Any:
        names.parse(name, "snapshots")
        with self.lock:
            snap = self.snapshots.get(name)
            if snap is None:
                raise not_found(f"Resource not found (resource={name.rsplit('/', 1)[-1]}).")
            return snap.pb

    def update_snapshot(self, snapshot: Any, mask: Any) -> Any:
        with self.lock:
            pb = self.get_snapshot(snapshot.name)
            self._apply_mask(pb, snapshot, mask, Snapshot, {"name", "topic"})
            self._save_state()
            return pb

    def list_snapshots(self, project: str) -> list[Any]:
        names.parse_project(project)
        with self.lock:
            return [s.pb for n, s in sorted(self.snapshots.items()) if n.startswith(project + "/")]

    def delete_snapshot(self, name: str) -> None:
        with self.lock:
            self.get_snapshot(name)
            del self.snapshots[name]
            self._save_state()

    def _expire_snapshots(self) -> None:
        now_ns = time.time_ns()
        gone = [n for n, s in self.snapshots.items() if s.pb.expire_time.ToNanoseconds() < now_ns]
        for n in gone:
            del self.snapshots[n]
        if gone:
            self._save_state()

    # ---------------------------------------------------------------- views
    def sub_stats(self, sub: SubState, now_wall: float) -> dict[str, Any]:
        low = sub.low_water()
        t = sub.topic
        oldest = now_wall - t.ts[low - t.base] if sub.unacked and t.base <= low < t.next_seq else 0.0
        return {
            "name": sub.name,
            "topic": sub.pb.topic,
            "type": "push" if sub.pb.push_config.push_endpoint else "pull",
            "push_endpoint": sub.pb.push_config.push_endpoint or None,
            "filter": sub.pb.filter or None,
            "ordered": sub.ordered,
            "dead_letter_topic": sub.dead_letter_topic or None,
            "backlog": len(sub.unacked),
            "outstanding": len(sub.leased),
            "oldest_unacked_age_s": round(max(0.0, oldest), 3),
            "delivered_total": sub.delivered,
            "acked_total": sub.acked,
            "dead_lettered_total": sub.dead_lettered,
            "expired_total": sub.expired,
            "retention_expired_total": sub.retention_expired,
            "detached": sub.pb.detached,
        }

    def stats(self) -> dict[str, Any]:
        now = time.time()
        with self.lock:
            topics = [
                {
                    "name": n,
                    "published_total": t.published,
                    "published_bytes_total": t.published_bytes,
                    "retained_messages": len(t.data),
                    "subscriptions": sorted(t.subs),
                }
                for n, t in sorted(self.topics.items())
            ]
            subs = [self.sub_stats(s, now) for _, s in sorted(self.subs.items())]
            snaps = [
                {"name": n, "topic": s.pb.topic, "messages": len(s.seqs)} for n, s in sorted(self.snapshots.items())
            ]
        return {"uptime_s": round(now - self.started, 1), "topics": topics, "subscriptions": subs, "snapshots": snaps}


def api_error_from(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    return ApiError(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
