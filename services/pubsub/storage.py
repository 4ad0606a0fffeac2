"""--data-dir durability: append-only logs, batched fsync, replay at start.

Layout under the data dir:

- ``state.json``: topics, subscriptions and snapshots (their protobufs as JSON) and the uids
  that name their log files; rewritten atomically on every admin change.
- ``topics/<uid>.log``: an 8-byte base sequence number, then records ``<u32 length><PubsubMessage>``.
- ``subs/<uid>.log``: 9-byte records ``<type><i64 seq>``, the type one of
  :class:`~services.pubsub.records.Record`: ``W`` everything below seq is acked, ``A`` seq acked,
  ``D`` seq delivered once more (delivery counts survive restarts).

Every publish and ack batch is one ``write`` (so a killed process loses nothing the kernel has);
a background thread fsyncs every ``fsync_interval_s`` (so a power cut loses at most that).
A torn record at the end of a log (kill -9 mid-write) is dropped on replay.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import struct
import threading
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format

from services.pubsub.records import Record, SubRecord
from services.pubsub.subscription import SubState
from services.pubsub.topic import Snapshot, Subscription, Topic, TopicState

if TYPE_CHECKING:
    from services.pubsub.broker import Broker

log = logging.getLogger("hyp.pubsub.storage")

_LEN = struct.Struct("<I")
_BASE = struct.Struct("<q")
_REC = struct.Struct("<Bq")
REWRITE_BYTES = 64 * 1024 * 1024


class Store:
    def __init__(self, data_dir: Path, fsync_interval_s: float = 0.2) -> None:
        self.dir = Path(data_dir)
        (self.dir / "topics").mkdir(parents=True, exist_ok=True)
        (self.dir / "subs").mkdir(parents=True, exist_ok=True)
        self.fsync_interval_s = fsync_interval_s
        self._fds: dict[str, int] = {}
        self._written: dict[str, int] = {}
        self._dirty: set[int] = set()
        self._stop = threading.Event()
        self._written_since_sync = threading.Event()
        self._lock: Any = threading.Lock()  # the broker's lock once started
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- files
    def _topic_path(self, uid: int) -> Path:
        return self.dir / "topics" / f"{uid}.log"

    def _sub_path(self, uid: int) -> Path:
        return self.dir / "subs" / f"{uid}.log"

    def _fd(self, path: Path, header: bytes = b"") -> int:
        key = str(path)
        fd = self._fds.get(key)
        if fd is None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            size = os.fstat(fd).st_size
            if size == 0 and header:
                os.write(fd, header)
                size = len(header)
            self._fds[key] = fd
            self._written[key] = size
        return fd

    def _write(self, path: Path, payload: bytes, header: bytes = b"") -> None:
        fd = self._fd(path, header)
        view = memoryview(payload)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        self._written[str(path)] += len(payload)
        self._dirty.add(fd)
        self._written_since_sync.set()

    def _close(self, path: Path) -> None:
        fd = self._fds.pop(str(path), None)
        self._written.pop(str(path), None)
        if fd is not None:
            self._dirty.discard(fd)
            os.close(fd)

    def _replace(self, path: Path, payload: bytes) -> None:
        self._close(path)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    # ---------------------------------------------------------------- broker hooks (called under the broker lock)
    def append_messages(self, uid: int, blobs: list[bytes]) -> None:
        parts = []
        for b in blobs:
            parts.append(_LEN.pack(len(b)))
            parts.append(b)
        self._write(self._topic_path(uid), b"".join(parts), header=_BASE.pack(0))

    def append_sub(self, uid: int, records: Iterable[SubRecord]) -> None:
        payload = b"".join(_REC.pack(kind, seq) for kind, seq in records)
        if payload:
            self._write(self._sub_path(uid), payload)

    def drop_sub(self, uid: int) -> None:
        self._close(self._sub_path(uid))
        self._sub_path(uid).unlink(missing_ok=True)

    def truncated(self, topic: TopicState) -> None:
        key = str(self._topic_path(topic.uid))
        written = self._written.get(key, 0)
        if written < REWRITE_BYTES:
            return
        live = sum(map(len, topic.data)) + _LEN.size * len(topic.data)
        if live * 2 < written:
            self.rewrite_topic(topic)

    def rewrite_topic(self, topic: TopicState) -> None:
        parts = [_BASE.pack(topic.base)]
        for b in topic.data:
            parts.append(_LEN.pack(len(b)))
            parts.append(b)
        self._replace(self._topic_path(topic.uid), b"".join(parts))

    def maybe_rewrite_sub(self, sub: SubState) -> None:
        """Compact a subscription's log once it has grown past REWRITE_BYTES (ack and delivery records)."""
        if self._written.get(str(self._sub_path(sub.uid)), 0) >= REWRITE_BYTES:
            self.rewrite_sub(sub)

    def rewrite_sub(self, sub: SubState) -> None:
        t = sub.topic
        low = min(sub.unacked) if sub.unacked else t.next_seq
        records: list[SubRecord] = [(Record.WATERMARK, low)]
        records += [(Record.ACKED, s) for s in range(low, t.next_seq) if s not in sub.unacked]
        for seq, n in sub.attempts.items():
            records += [(Record.DELIVERED, seq)] * n
        self._replace(self._sub_path(sub.uid), b"".join(_REC.pack(k, s) for k, s in records))

    def save_state(self, broker: Broker) -> None:
        topics = {t.uid: t for t in broker.topics.values()}
        for sub in broker.subs.values():
            topics.setdefault(sub.topic.uid, sub.topic)
        for snap in broker.snapshots.values():
            topics.setdefault(snap.topic.uid, snap.topic)
        state = {
            "version": 1,
            "next_uid": broker.next_uid,
            "topics": [
                {"uid": t.uid, "deleted": t.deleted, "pb": json_format.MessageToDict(t.pb)} for t in topics.values()
            ],
            "subscriptions": [
                {
                    "uid": s.uid,
                    "topic_uid": s.topic.uid,
                    "start_seq": s.start_seq,
                    "pb": json_format.MessageToDict(s.pb),
                }
                for s in broker.subs.values()
            ],
            "snapshots": [
                {
                    "topic_uid": s.topic.uid,
                    "end": s.end,
                    "seqs": base64.b64encode(s.seqs.tobytes()).decode(),
                    "pb": json_format.MessageToDict(s.pb),
                }
                for s in broker.snapshots.values()
            ],
        }
        self._replace(self.dir / "state.json", json.dumps(state).encode())
        live = {str(self._topic_path(uid)) for uid in topics}
        for path in list(self.dir.glob("topics/*.log")):
            if str(path) not in live:
                self._close(path)
                path.unlink(missing_ok=True)

    # ---------------------------------------------------------------- replay
    def load(self, broker: Broker) -> None:
        """Replay state.json and the logs into an empty broker through its restore API."""
        path = self.dir / "state.json"
        if not path.exists():
            return
        state = json.loads(path.read_text())
        broker.restore_counters(next_uid=int(state.get("next_uid", 1)))
        topics: dict[int, TopicState] = {}
        msgs: dict[int, list[Any]] = {}
        for entry in state["topics"]:
            pb = json_format.ParseDict(entry["pb"], Topic())
            t = broker.restore_topic(entry["uid"], pb, deleted=entry.get("deleted", False))
            msgs[t.uid], max_id = self._read_topic(t)
            broker.restore_counters(next_message_id=max_id + 1)
            topics[t.uid] = t
        subs: list[SubState] = []
        for entry in state["subscriptions"]:
            pb = json_format.ParseDict(entry["pb"], Subscription())
            t = topics[entry["topic_uid"]]
            sub = broker.restore_subscription(entry["uid"], pb, t, start_seq=entry.get("start_seq", t.base))
            self._replay_sub(sub, msgs[t.uid])
            subs.append(sub)
        for entry in state["snapshots"]:
            pb = json_format.ParseDict(entry["pb"], Snapshot())
            seqs = array("q")
            seqs.frombytes(base64.b64decode(entry["seqs"]))
            broker.restore_snapshot(pb, topics[entry["topic_uid"]], seqs, entry["end"])
        for t in topics.values():
            self.rewrite_topic(t)
        for sub in subs:
            self.rewrite_sub(sub)
        backlog = sum(len(s.unacked) for s in subs)
        log.info(
            "recovered",
            extra={"fields": {"topics": len(broker.topics), "subscriptions": len(broker.subs), "backlog": backlog}},
        )

    def _read_topic(self, t: TopicState) -> tuple[list[Any], int]:
        """Fill t's log from disk; returns the messages parsed and the largest message id seen."""
        path = self._topic_path(t.uid)
        parsed: list[Any] = []
        if not path.exists():
            return parsed, 0
        raw = path.read_bytes()
        if len(raw) < _BASE.size:
            return parsed, 0
        (t.base,) = _BASE.unpack_from(raw, 0)
        pos = _BASE.size
        max_id = 0
        while pos + _LEN.size <= len(raw):
            (n,) = _LEN.unpack_from(raw, pos)
            if pos + _LEN.size + n > len(raw):
                log.warning("dropping a torn record at the end of a topic log", extra={"fields": {"path": str(path)}})
                break
            blob = raw[pos + _LEN.size : pos + _LEN.size + n]
            pos += _LEN.size + n
            msg = t.restore(blob)
            parsed.append(msg)
            max_id = max(max_id, int(msg.message_id or 0))
        return parsed, max_id

    def _replay_sub(self, sub: SubState, parsed: list[Any]) -> None:
        t = sub.topic
        path = self._sub_path(sub.uid)
        low = sub.start_seq
        acked: set[int] = set()
        attempts: dict[int, int] = {}
        raw = path.read_bytes() if path.exists() else b""
        usable = len(raw) - len(raw) % _REC.size
        for kind, seq in _REC.iter_unpack(raw[:usable]):
            if kind == Record.WATERMARK:
                low = seq
                acked.clear()
            elif kind == Record.ACKED:
                acked.add(seq)
            elif kind == Record.DELIVERED:
                attempts[seq] = attempts.get(seq, 0) + 1
        start = max(low, t.base)
        unacked = {seq for seq in range(start, t.next_seq) if seq not in acked and sub.accepts(parsed[seq - t.base])}
        sub.restore(unacked, attempts)

    # ---------------------------------------------------------------- fsync
    def start(self, lock: Any) -> None:
        self._lock = lock
        self._thread = threading.Thread(target=self._fsync_loop, name="pubsub-fsync", daemon=True)
        self._thread.start()

    def _fsync_loop(self) -> None:
        """fsync at most every fsync_interval_s, and only after writes: an idle emulator sleeps here."""
        while not self._stop.is_set():
            self._written_since_sync.wait()
            if self._stop.wait(self.fsync_interval_s):
                break
            self._written_since_sync.clear()
            self.sync()

    def sync(self) -> None:
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        for fd in dirty:
            with contextlib.suppress(OSError):  # closed by a rewrite in between: the rewrite fsynced
                os.fsync(fd)

    def close(self) -> None:
        self._stop.set()
        self._written_since_sync.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            for fd in list(self._fds.values()):
                os.fsync(fd)
                os.close(fd)
            self._fds.clear()
