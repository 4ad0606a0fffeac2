"""The broker: the emulator's one lock-holding facade over topics, subscriptions and snapshots.

Storage model (cheap for large backlogs): each topic keeps one append-only log of serialized
``PubsubMessage`` bytes indexed by a per-topic sequence number (:mod:`~services.pubsub.topic`); a
subscription holds only integers and owns its delivery rules (:mod:`~services.pubsub.subscription`);
housekeeping (lease expiry, backoff ends, retention, truncation) is :mod:`~services.pubsub.housekeeping`.
The topic log is truncated below the lowest sequence any subscription, snapshot or retention window
still needs.

Every method takes and returns raw protobuf messages (``google.pubsub_v1.types.X.pb()``) and
raises :class:`~services.pubsub.errors.ApiError` with the real service's status codes; the gRPC
and REST front ends are thin translations.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import field_mask_pb2

from services.pubsub import housekeeping, names
from services.pubsub.errors import (
    ApiError,
    already_exists,
    failed_precondition,
    invalid,
    invalid_ack_ids,
    not_found,
)
from services.pubsub.filters import compile_filter
from services.pubsub.records import Record, SubRecord
from services.pubsub.seqset import SeqSet
from services.pubsub.subscription import PUSH_BACKOFF_MAX_S, PUSH_BACKOFF_MIN_S, SubState
from services.pubsub.topic import (
    PubsubMessage,
    PullResponse,
    Snapshot,
    SnapshotState,
    Subscription,
    Topic,
    TopicState,
    stamp,
)
from services.pubsub.validation import (
    DEFAULT_ACK_DEADLINE_S,
    DEFAULT_DEAD_LETTER_ATTEMPTS,
    SNAPSHOT_IMMUTABLE,
    SUB_IMMUTABLE,
    TOPIC_IMMUTABLE,
    apply_mask,
    check_messages,
    check_retention,
    check_subscription,
    duration_s,
    parse_ack_id,
)

if TYPE_CHECKING:
    from services.pubsub.storage import Store

__all__ = [
    "DEFAULT_ACK_DEADLINE_S",
    "DEFAULT_DEAD_LETTER_ATTEMPTS",
    "PUSH_BACKOFF_MAX_S",
    "PUSH_BACKOFF_MIN_S",
    "Broker",
    "PubsubMessage",
    "PullResponse",
    "Snapshot",
    "SnapshotState",
    "SubState",
    "Subscription",
    "Topic",
    "TopicState",
    "api_error_from",
]


# Memory accounting of the budget, measured (services/pubsub tests' figures, docs/pubsub.md): a retained message
# costs its serialized bytes plus about 60 bytes of log bookkeeping, plus one bit (counted as a byte) per
# subscription that holds it unacked (services/pubsub/seqset.py).
MESSAGE_OVERHEAD_BYTES = 64
UNACKED_OVERHEAD_BYTES = 1


def _not_found(name: str) -> ApiError:
    return not_found(f"Resource not found (resource={name.rsplit('/', 1)[-1]}).")


class Broker:
    """All state of the emulator. One lock; waiters use per-subscription conditions on it."""

    def __init__(
        self, store: Store | None = None, memory_budget_bytes: int = 0, retention_speedup: float = 1.0
    ) -> None:
        self.lock = threading.RLock()
        self.memory_budget_bytes = memory_budget_bytes  # 0: no limit
        self.retention_speedup = retention_speedup
        self.rejected = 0  # publishes refused by the memory budget
        self.topics: dict[str, TopicState] = {}
        self.subs: dict[str, SubState] = {}
        self.snapshots: dict[str, SnapshotState] = {}
        self.store = store
        self._next_uid = 1
        self._next_id = time.time_ns() // 1000
        self.started = time.time()
        self.on_push_subscription: Callable[[SubState], None] | None = None
        self.on_bigquery_subscription: Callable[[SubState], None] | None = None
        # Housekeeping sleeps on `timer` until `due` (the earliest lease deadline or backoff end, monotonic);
        # whoever sets an earlier one notifies it.
        self.timer = threading.Condition(self.lock)
        self.due = float("inf")

    # ---------------------------------------------------------------- helpers (lock held)
    def _uid(self) -> int:
        self._next_uid += 1
        return self._next_uid - 1

    def _topic(self, name: str) -> TopicState:
        names.parse(name, "topics")
        t = self.topics.get(name)
        if t is None:
            raise _not_found(name)
        return t

    def _sub(self, name: str) -> SubState:
        names.parse(name, "subscriptions")
        s = self.subs.get(name)
        if s is None:
            raise _not_found(name)
        return s

    def save_state(self) -> None:
        """Persist the admin state (topics, subscriptions, snapshots); no-op without a data dir."""
        if self.store is not None:
            self.store.save_state(self)

    def retention_s(self, duration: Any) -> float:
        """A retention duration in seconds, as this emulator applies it (see settings.retention_speedup)."""
        return duration_s(duration) / self.retention_speedup

    def retained_bytes(self) -> int:
        """What the budget counts: message bytes and bookkeeping of every topic log and unacked set. Lock held."""
        logs = {id(t): t for t in self.topics.values()}
        logs.update((id(s.topic), s.topic) for s in self.subs.values())
        total = sum(t.retained_bytes + MESSAGE_OVERHEAD_BYTES * len(t.data) for t in logs.values())
        return total + UNACKED_OVERHEAD_BYTES * sum(len(s.unacked) for s in self.subs.values())

    def _check_budget(self) -> None:
        """Refuse a publish once the retained backlog has reached the budget (one request may pass it)."""
        budget = self.memory_budget_bytes
        if not budget:
            return
        retained = self.retained_bytes()
        if retained >= budget:
            self.rejected += 1
            mib = 1024 * 1024
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Publish rejected: the emulator's in-memory backlog ({retained // mib} MiB) has reached its "
                f"memory budget (HYP_PUBSUB_MEMORY_BUDGET_MB={budget // mib}). Acknowledge or seek past messages, "
                "delete idle subscriptions, shorten message_retention_duration, raise the budget, or run with "
                "--data-dir.",
            )

    # ---------------------------------------------------------------- DeliveryHost (for subscriptions)
    def schedule(self, when: float) -> None:
        """Make housekeeping run at `when` (monotonic) at the latest. Lock held."""
        if when < self.due:
            self.due = when
            self.timer.notify()

    def journal(self, sub: SubState, records: list[SubRecord]) -> None:
        if self.store is not None:
            self.store.append_sub(sub.uid, records)

    def dead_letter(self, topic: str, msg: Any) -> bool:
        dl = self.topics.get(topic)
        if dl is None:
            return False
        self._append(dl, [msg])
        return True

    # ---------------------------------------------------------------- restore (storage replay, before serving)
    @property
    def next_uid(self) -> int:
        """The uid the next topic or subscription gets (persisted so log file names never repeat)."""
        return self._next_uid

    def restore_counters(self, next_uid: int = 1, next_message_id: int = 0) -> None:
        """Never hand out a uid or message id at or below what a previous process used."""
        with self.lock:
            self._next_uid = max(self._next_uid, next_uid)
            self._next_id = max(self._next_id, next_message_id)

    def restore_topic(self, uid: int, pb: Any, deleted: bool = False) -> TopicState:
        """A topic read back from disk (its log is filled in by the caller); registered unless deleted."""
        t = TopicState(uid=uid, pb=pb, deleted=deleted)
        if self.store is not None:
            t.data = self.store.messages(uid, loading=True)
        with self.lock:
            if not deleted:
                self.topics[pb.name] = t
        return t

    def restore_subscription(self, uid: int, pb: Any, topic: TopicState, start_seq: int) -> SubState:
        """A subscription read back from disk, with nothing outstanding yet (see ``SubState.restore``)."""
        with self.lock:
            sub = SubState(
                uid=uid,
                pb=pb,
                topic=topic,
                predicate=compile_filter(pb.filter),
                cond=threading.Condition(self.lock),
                host=self,
            )
            sub.start_seq = start_seq
            self.subs[pb.name] = sub
            if not pb.detached:
                topic.subs[pb.name] = sub
            return sub

    def restore_snapshot(self, pb: Any, topic: TopicState, seqs: array[int], end: int) -> None:
        with self.lock:
            self.snapshots[pb.name] = SnapshotState(pb=pb, topic=topic, seqs=seqs, end=end)

    # ---------------------------------------------------------------- topics
    def create_topic(self, req: Any) -> Any:
        names.parse(req.name, "topics")
        check_retention(req)
        with self.lock:
            if req.name in self.topics:
                raise already_exists("Topic already exists")
            pb = Topic()
            pb.CopyFrom(req)
            t = TopicState(uid=self._uid(), pb=pb)
            if self.store is not None:
                t.data = self.store.messages(t.uid, loading=False)
            self.topics[req.name] = t
            self.save_state()
            return pb

    def get_topic(self, name: str) -> Any:
        with self.lock:
            return self._topic(name).pb

    def update_topic(self, topic: Any, mask: Any) -> Any:
        with self.lock:
            t = self._topic(topic.name)
            pb = Topic()
            pb.CopyFrom(t.pb)
            apply_mask(pb, topic, mask, Topic, TOPIC_IMMUTABLE)
            check_retention(pb)  # before the topic changes: a refused update leaves it as it was
            t.pb = pb
            self.save_state()
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
            self.save_state()

    def detach_subscription(self, name: str) -> None:
        with self.lock:
            sub = self._sub(name)
            sub.pb.detached = True
            sub.topic.subs.pop(sub.name, None)
            sub.clear()
            self.save_state()
            sub.notify()

    # ---------------------------------------------------------------- subscriptions
    def create_subscription(self, req: Any) -> Any:
        names.parse(req.name, "subscriptions")
        names.parse(req.topic, "topics")
        pb = Subscription()
        pb.CopyFrom(req)
        predicate = check_subscription(pb)
        with self.lock:
            if req.name in self.subs:
                raise already_exists("Subscription already exists")
            topic = self._topic(req.topic)
            sub = SubState(
                uid=self._uid(),
                pb=pb,
                topic=topic,
                predicate=predicate,
                cond=threading.Condition(self.lock),
                host=self,
            )
            sub.start_seq = topic.next_seq
            self.subs[pb.name] = sub
            topic.subs[pb.name] = sub
            self.journal(sub, [(Record.WATERMARK, topic.next_seq)])
            _with_topic_retention(sub)
            self.save_state()
        self._deliver(sub)
        return pb

    def _deliver(self, sub: SubState) -> None:
        """Start the delivery loop of a push or BigQuery subscription (idempotent). Lock not held."""
        pb = sub.pb
        if pb.push_config.push_endpoint and self.on_push_subscription:
            self.on_push_subscription(sub)
        if pb.bigquery_config.table and self.on_bigquery_subscription:
            self.on_bigquery_subscription(sub)

    def get_subscription(self, name: str) -> Any:
        with self.lock:
            return _with_topic_retention(self._sub(name))

    def update_subscription(self, subscription: Any, mask: Any) -> Any:
        with self.lock:
            sub = self._sub(subscription.name)
            pb = Subscription()
            pb.CopyFrom(sub.pb)
            apply_mask(pb, subscription, mask, Subscription, SUB_IMMUTABLE)
            check_subscription(pb)
            sub.pb = pb
            _with_topic_retention(sub)
            self.save_state()
            sub.notify()
        self._deliver(sub)
        return pb

    def modify_push_config(self, name: str, push_config: Any) -> None:
        mask = field_mask_pb2.FieldMask(paths=["push_config"])
        self.update_subscription(Subscription(name=name, push_config=push_config), mask)

    def list_subscriptions(self, project: str) -> list[Any]:
        names.parse_project(project)
        with self.lock:
            return [_with_topic_retention(s) for n, s in sorted(self.subs.items()) if n.startswith(project + "/")]

    def delete_subscription(self, name: str) -> None:
        with self.lock:
            sub = self._sub(name)
            del self.subs[name]
            sub.topic.subs.pop(name, None)
            sub.clear()
            if self.store is not None:
                self.store.drop_sub(sub.uid)
            self.save_state()
            sub.notify()

    # ---------------------------------------------------------------- publish
    def publish(self, topic_name: str, messages: Any) -> list[str]:
        """Append messages (PubsubMessage pbs, modified in place) and fan them out; returns their ids."""
        check_messages(messages)
        with self.lock:
            t = self._topic(topic_name)
            self._check_budget()
            return self._append(t, messages)

    def _append(self, t: TopicState, messages: Any, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        seq0 = t.next_seq
        first_id = self._next_id
        self._next_id += len(messages)
        blobs, keys = stamp(messages, first_id, now)
        if self.store is not None:  # on disk first: a write that fails (disk full) leaves nothing half-published
            self.store.append_messages(t.uid, seq0, blobs)
        t.add(blobs, keys, now)
        for sub in t.subs.values():
            sub.offer(seq0, messages)
        return [str(first_id + i) for i in range(len(blobs))]

    # ---------------------------------------------------------------- delivery
    def pull_sub(self, name: str, pulling: bool = True) -> SubState:
        """The attached subscription `name`; with `pulling`, one that Pull and StreamingPull may read."""
        with self.lock:
            sub = self._sub(name)
            if sub.pb.detached:
                raise failed_precondition(f"Subscription is detached: {name}")
            if pulling and sub.pb.bigquery_config.table:
                raise failed_precondition(
                    f"Pull and StreamingPull are not supported on a BigQuery subscription: {name} (it writes "
                    "its messages to its table)"
                )
            return sub

    def take(
        self,
        sub: SubState,
        max_messages: int,
        deadline_s: float,
        max_bytes: int = 0,
        track: dict[int, int] | None = None,
    ) -> list[bytes]:
        """Lease up to max_messages ready messages (see ``SubState.take``). Lock held."""
        return sub.take(max_messages, deadline_s, max_bytes, track)

    def pull(self, name: str, max_messages: int, return_immediately: bool, wait_s: float) -> list[bytes]:
        if max_messages <= 0:
            raise invalid("max_messages must be a positive number")
        n = min(max_messages, names.MAX_PULL_MESSAGES)
        end = time.monotonic() + wait_s
        with self.lock:
            sub = self.pull_sub(name)
            while True:
                out = sub.take(n, sub.pb.ack_deadline_seconds)
                if out or return_immediately:
                    return out
                left = end - time.monotonic()
                if left <= 0 or self.subs.get(name) is not sub:
                    return out
                sub.cond.wait(left)

    def acknowledge(self, name: str, ack_ids: Iterable[str]) -> None:
        ack_ids = list(ack_ids)
        if not ack_ids:
            raise invalid("No ack ids given")
        with self.lock:
            sub = self._sub(name)
            if sub.exactly_once:
                failed = sub.ack_exactly_once(ack_ids)
                if failed:
                    raise invalid_ack_ids(failed)
                return
        parsed = [parse_ack_id(a) for a in ack_ids]
        with self.lock:
            sub.ack(parsed)

    def ack_exactly_once(self, sub: SubState, ack_ids: Iterable[str]) -> list[str]:
        """Ack the ack ids that name live deliveries; returns those that failed. Lock held."""
        return sub.ack_exactly_once(ack_ids)

    def modack_exactly_once(self, sub: SubState, items: Iterable[tuple[str, float]]) -> list[str]:
        """Modify deadlines (0 = nack) of live deliveries; returns the ack ids that failed. Lock held."""
        return sub.modack_exactly_once(items)

    def modify_ack_deadline(self, name: str, ack_ids: Iterable[str], seconds: int) -> None:
        ack_ids = list(ack_ids)
        if not 0 <= seconds <= names.MAX_ACK_DEADLINE_S:
            raise invalid(f"Invalid ack_deadline_seconds: {seconds} (must be between 0 and 600)")
        with self.lock:
            sub = self._sub(name)
            if sub.exactly_once:
                failed = sub.modack_exactly_once((a, seconds) for a in ack_ids)
                if failed:
                    raise invalid_ack_ids(failed)
                return
        parsed = [parse_ack_id(a) for a in ack_ids]
        with self.lock:
            sub.modack(parsed, seconds)

    def nack(self, sub: SubState, seq: int, gen: int, push: bool = False) -> None:
        with self.lock:
            sub.nack(seq, gen, push)

    # ---------------------------------------------------------------- housekeeping
    def tick(self) -> None:
        """Expire leases and release delayed messages that are due (see housekeeping.tick)."""
        housekeeping.tick(self)

    def compact(self, wall: float | None = None) -> None:
        """Retention, log truncation, snapshot expiry (see housekeeping.compact; wall: now, for tests)."""
        housekeeping.compact(self, wall)

    # ---------------------------------------------------------------- seek and snapshots
    def seek(self, name: str, when: Any | None, snapshot: str | None) -> None:
        with self.lock:
            sub = self.pull_sub(name, pulling=False)
            t = sub.topic
            if snapshot is not None:
                names.parse(snapshot, "snapshots")
                snap = self.snapshots.get(snapshot)
                if snap is None:
                    raise _not_found(snapshot)
                if snap.topic is not t:
                    raise failed_precondition("The snapshot's topic is not the subscription's topic")
                chosen = SeqSet(s for s in snap.seqs if s >= t.base)
                chosen.add_range(max(snap.end, t.base), t.next_seq)
                low = snap.low()
            else:
                if when is None:
                    raise invalid("Seek needs a time or a snapshot")
                low = max(t.first_seq_at(when.ToNanoseconds() / 1e9), t.base)
                if not t.pb.HasField("message_retention_duration"):
                    low = max(low, sub.start_seq)
                chosen = SeqSet.from_range(low, t.next_seq)
            if sub.predicate is not None or t.lost:
                for s in iter(chosen):
                    # lost in a damaged log: never delivered; with a filter, only what it accepts
                    if not t.size(s) or (sub.predicate is not None and not sub.accepts(t.message(s))):
                        chosen.discard(s)
            sub.reset(chosen, low)

    def create_snapshot(self, name: str, subscription: str, labels: dict[str, str]) -> Any:
        names.parse(name, "snapshots")
        with self.lock:
            sub = self.pull_sub(subscription, pulling=False)
            if name in self.snapshots:
                raise already_exists("Snapshot already exists")
            t = sub.topic
            if t.deleted:
                raise failed_precondition("The subscription's topic was deleted")
            seqs = array("q", sub.unacked)  # ascending
            oldest = t.ts[seqs[0] - t.base] if seqs else time.time()
            pb = Snapshot(name=name, topic=t.pb.name, labels=labels)
            pb.expire_time.FromNanoseconds(int((oldest + names.DEFAULT_RETENTION_S) * 1e9))
            self.snapshots[name] = SnapshotState(pb=pb, topic=t, seqs=seqs, end=t.next_seq)
            self.save_state()
            return pb

    def get_snapshot(self, name: str) -> Any:
        names.parse(name, "snapshots")
        with self.lock:
            snap = self.snapshots.get(name)
            if snap is None:
                raise _not_found(name)
            return snap.pb

    def update_snapshot(self, snapshot: Any, mask: Any) -> Any:
        with self.lock:
            pb = self.get_snapshot(snapshot.name)
            apply_mask(pb, snapshot, mask, Snapshot, SNAPSHOT_IMMUTABLE)
            self.save_state()
            return pb

    def list_snapshots(self, project: str) -> list[Any]:
        names.parse_project(project)
        with self.lock:
            return [s.pb for n, s in sorted(self.snapshots.items()) if n.startswith(project + "/")]

    def delete_snapshot(self, name: str) -> None:
        with self.lock:
            self.get_snapshot(name)
            del self.snapshots[name]
            self.save_state()

    # ---------------------------------------------------------------- views
    def sub_stats(self, sub: SubState, now_wall: float) -> dict[str, Any]:
        return sub.stats(now_wall)

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
            subs = [s.stats(now) for _, s in sorted(self.subs.items())]
            snaps = [
                {"name": n, "topic": s.pb.topic, "messages": len(s.seqs)} for n, s in sorted(self.snapshots.items())
            ]
            out: dict[str, Any] = {
                "uptime_s": round(now - self.started, 1),
                "topics": topics,
                "subscriptions": subs,
                "snapshots": snaps,
            }
            if self.store is not None:
                out["store"] = self.store.report()
            if self.memory_budget_bytes:
                out["memory"] = {
                    "retained_bytes": self.retained_bytes(),
                    "budget_bytes": self.memory_budget_bytes,
                    "rejected_total": self.rejected,
                }
        return out


def _with_topic_retention(sub: SubState) -> Any:
    """The subscription's pb with the output-only topic_message_retention_duration as GCP fills it in (the
    topic's message_retention_duration; what a request sets is ignored). Lock held."""
    pb, t = sub.pb, sub.topic
    if t.deleted or not t.pb.HasField("message_retention_duration"):
        pb.ClearField("topic_message_retention_duration")
    else:
        pb.topic_message_retention_duration.CopyFrom(t.pb.message_retention_duration)
    return pb


def api_error_from(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    return ApiError(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
