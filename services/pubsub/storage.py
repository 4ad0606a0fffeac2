"""--data-dir durability: append-only logs with a checksum per record, batched fsync, replay at start.

Layout under the data dir:

- ``state.json``: topics, subscriptions and snapshots (their protobufs as JSON) and the uids
  that name their log files; rewritten atomically on every admin change.
- ``topics/<uid>.log``: a header with the base sequence number, then one record per message
  (``<crc><length><seq><PubsubMessage>``).
- ``subs/<uid>.log``: checked frames (one a journal write) of 9-byte records ``<type><i64 seq>``, the type one of
  :class:`~services.pubsub.records.Record`: ``W`` everything below seq is acked, ``A`` seq acked,
  ``D`` seq delivered once more (delivery counts survive restarts).

The formats and their recovery scans are :mod:`~services.pubsub.logformat`. Every publish and ack
batch is one ``write`` (so a killed process loses nothing the kernel has); a background thread
fsyncs every ``fsync_interval_s`` (so a power cut loses at most that); a directory is fsynced
whenever a file appears in it. Replay checks every record: a torn or zero-filled tail is cut at the
last good record; a corrupted record in the middle is skipped and its message reported lost, never
replayed; both are logged and counted (:meth:`Store.report`). Logs of the old format (no checksums)
are read and rewritten in the new one on start. An unreadable ``state.json`` is moved aside with
the logs (nothing is deleted) and the emulator starts empty.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import mmap
import os
import threading
import time
import weakref
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from services.common.files import fsync_dir
from services.pubsub import logformat
from services.pubsub.disklog import DiskMessages
from services.pubsub.errors import ApiError
from services.pubsub.records import Record, SubRecord
from services.pubsub.seqset import SeqSet
from services.pubsub.subscription import SubState
from services.pubsub.topic import PubsubMessage, Snapshot, Subscription, Topic, TopicState

if TYPE_CHECKING:
    from services.pubsub.broker import Broker

log = logging.getLogger("hyp.pubsub.storage")

REWRITE_BYTES = 64 * 1024 * 1024
REWRITE_CHUNK = 16384  # messages read and written at a time by a topic-log rewrite
RELEASE_BYTES = 64 * 1024 * 1024  # a streamed replay hands back the map's pages every this many bytes


def _replay_record(
    t: TopicState,
    seq: int,
    blob: bytes,
    parse: Callable[[bytes], Any],
    lost: list[int],
    filtered: list[SubState],
    accepted: dict[int, SeqSet],
) -> Any:
    """One topic-log record read back at start, either format: the seqs missing before it, and the record itself
    when it is empty or does not parse, become lost placeholders in t (their seqs added to lost); a message is
    offered to the filtered subscriptions (the seq added to accepted[uid] where its filter matches). parse reads
    the record's bytes into a message (t.restore also keeps them in t). Returns the message, or None if lost."""
    gap = seq - t.next_seq
    if gap > 0:
        lost += range(t.next_seq, seq)
        t.restore_lost(gap)
    msg = None
    if blob:
        try:
            msg = parse(blob)
        except DecodeError:
            lost.append(seq)
    if msg is None:
        t.restore_lost(1)
        return None
    for sub in filtered:
        if sub.accepts(msg):
            accepted[sub.uid].add(seq)
    return msg


class Store:
    def __init__(self, data_dir: Path, fsync_interval_s: float = 0.2) -> None:
        self.dir = Path(data_dir)
        self.fsync_interval_s = fsync_interval_s
        # what replay skipped: bytes by (log kind, "tail" | "middle"), messages lost, logs rewritten from v1
        self.skipped: dict[tuple[str, str], int] = {}
        self.lost_messages = 0
        self.migrated = 0
        self.set_aside = 0  # 1 when an unreadable state.json made this start empty
        self.write_failures = 0  # appends the disk refused (ENOSPC, EFBIG), cut back off their log
        self._mkdirs()
        self._fds: dict[str, int] = {}
        self._written: dict[str, int] = {}
        self._dirty: set[int] = set()
        self._stop = threading.Event()
        self._written_since_sync = threading.Event()
        self._lock: Any = threading.Lock()  # the broker's lock once started
        self._messages: weakref.WeakValueDictionary[int, DiskMessages] = weakref.WeakValueDictionary()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- files
    def _mkdirs(self) -> None:
        for sub in ("topics", "subs"):
            path = self.dir / sub
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                fsync_dir(path.parent)

    def _topic_path(self, uid: int) -> Path:
        return self.dir / "topics" / f"{uid}.log"

    def _sub_path(self, uid: int) -> Path:
        return self.dir / "subs" / f"{uid}.log"

    def _fd(self, path: Path, header: bytes = b"") -> int:
        key = str(path)
        fd = self._fds.get(key)
        if fd is None:
            existed = path.exists()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if not existed:
                fsync_dir(path.parent)  # the new name survives a power cut along with what is fsynced into it
            size = os.fstat(fd).st_size
            if size == 0 and header:
                os.write(fd, header)
                size = len(header)
            self._fds[key] = fd
            self._written[key] = size
        return fd

    def _write(self, path: Path, payload: bytes, header: bytes = b"") -> None:
        """Append payload whole or not at all: a failed write (disk full) is cut back off the file and raised."""
        fd = self._fd(path, header)
        view = memoryview(payload)
        try:
            while view:
                n = os.write(fd, view)
                view = view[n:]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._written[str(path)])
            raise
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
        fsync_dir(path.parent)

    # ---------------------------------------------------------------- broker hooks (called under the broker lock)
    def messages(self, uid: int, loading: bool) -> DiskMessages:
        """A topic's messages as places in its log (``loading``: read back by :meth:`load`, bytes until then)."""
        messages = DiskMessages(self._topic_path(uid), loading=loading)
        self._messages[uid] = messages
        return messages

    def append_messages(self, uid: int, seq0: int, blobs: list[bytes]) -> None:
        """Log messages published at sequence numbers seq0, seq0 + 1, ...; RESOURCE_EXHAUSTED when the disk
        (or the file size limit) refuses the write, with nothing of it left in the log."""
        path = self._topic_path(uid)
        try:
            header = logformat.topic_header(0)
            self._fd(path, header)
            messages = self._messages.get(uid)
            if messages is not None:  # the records start where the log ends (DiskMessages.extend follows)
                messages.end = self._written[str(path)]
            self._write(path, logformat.topic_records(seq0, blobs), header=header)
        except OSError as exc:
            self.write_failures += 1
            log.error("publish not stored", extra={"fields": {"path": str(path), "error": str(exc)}})
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Publish rejected: the emulator cannot write its data dir ({os.strerror(exc.errno or 0)}); "
                "free disk space and publish again.",
            ) from None

    def append_sub(self, uid: int, records: Iterable[SubRecord]) -> None:
        """Journal delivery records; one the disk refuses is dropped and counted (after a restart its message
        is delivered again or with a lower count: at-least-once holds)."""
        payload = logformat.sub_records(list(records))
        if payload:
            try:
                self._write(self._sub_path(uid), payload, header=logformat.SUB_MAGIC)
            except OSError as exc:
                self.write_failures += 1
                log.error("delivery records not stored", extra={"fields": {"uid": uid, "error": str(exc)}})

    def drop_sub(self, uid: int) -> None:
        self._close(self._sub_path(uid))
        self._sub_path(uid).unlink(missing_ok=True)

    def truncated(self, topic: TopicState) -> None:
        key = str(self._topic_path(topic.uid))
        written = self._written.get(key, 0)
        if written < REWRITE_BYTES:
            return
        live = topic.retained_bytes + 16 * len(topic.data)
        if live * 2 < written:
            self.rewrite_topic(topic)

    def rewrite_topic(self, topic: TopicState) -> None:
        """The live part of a topic's log (a lost message stays as an empty record: reported once).

        Messages on disk are copied a chunk at a time from the old log to the new one, never all in memory."""
        path = self._topic_path(topic.uid)
        data = topic.data
        if not isinstance(data, DiskMessages):
            self._replace(path, logformat.topic_header(topic.base) + logformat.topic_records(topic.base, data))
            return
        self._close(path)
        header = logformat.topic_header(topic.base)
        lengths = array("I")
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(header)
            for i in range(0, len(data), REWRITE_CHUNK):
                blobs = data[i : i + REWRITE_CHUNK]
                fh.write(logformat.topic_records(topic.base + i, blobs))
                lengths.extend(map(len, blobs))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
        data.rewritten(len(header), lengths)

    def maybe_rewrite_sub(self, sub: SubState) -> None:
        """Compact a subscription's log once it has grown past REWRITE_BYTES (ack and delivery records)."""
        if self._written.get(str(self._sub_path(sub.uid)), 0) >= REWRITE_BYTES:
            self.rewrite_sub(sub)

    def rewrite_sub(self, sub: SubState) -> None:
        t = sub.topic
        first = sub.unacked.min()
        low = t.next_seq if first is None else first
        records: list[SubRecord] = [(Record.WATERMARK, low)]
        records += [(Record.ACKED, s) for s in sub.unacked.gaps(low, t.next_seq)]  # the holes acks punched
        for seq, n in sub.attempts.items():
            records += [(Record.DELIVERED, seq)] * n
        self._replace(self._sub_path(sub.uid), logformat.SUB_MAGIC + logformat.sub_records(records))

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
        try:
            state = json.loads(path.read_bytes())
            entries = (state["topics"], state["subscriptions"], state["snapshots"])
        except (ValueError, KeyError, TypeError) as exc:
            self._set_aside(f"state.json is unreadable ({type(exc).__name__}: {str(exc)[:200]})")
            return
        broker.restore_counters(next_uid=int(state.get("next_uid", 1)))
        topics: dict[int, TopicState] = {}
        for entry in entries[0]:
            pb = json_format.ParseDict(entry["pb"], Topic())
            t = broker.restore_topic(entry["uid"], pb, deleted=entry.get("deleted", False))
            topics[t.uid] = t
        subs: list[tuple[SubState, int | None]] = []
        for entry in entries[1]:
            pb = json_format.ParseDict(entry["pb"], Subscription())
            sub = broker.restore_subscription(entry["uid"], pb, topics[entry["topic_uid"]], start_seq=0)
            subs.append((sub, entry.get("start_seq")))
        # Each topic log is read once, streamed: its subscriptions' filters see every message as it goes by.
        lost: dict[int, list[int]] = {}
        accepted: dict[int, SeqSet] = {}
        rewrite: set[int] = set()
        for t in topics.values():
            filtered = [sub for sub, _ in subs if sub.topic is t and sub.predicate is not None]
            lost[t.uid], found, max_id, dirty = self._read_topic(t, filtered)
            accepted.update(found)
            broker.restore_counters(next_message_id=max_id + 1)
            if dirty:
                rewrite.add(t.uid)
        for sub, start_seq in subs:
            sub.start_seq = sub.topic.base if start_seq is None else start_seq
            self._replay_sub(sub, lost[sub.topic.uid], accepted.get(sub.uid))
        for entry in entries[2]:
            pb = json_format.ParseDict(entry["pb"], Snapshot())
            seqs = array("q")
            seqs.frombytes(base64.b64decode(entry["seqs"]))
            broker.restore_snapshot(pb, topics[entry["topic_uid"]], seqs, entry["end"])
        for t in topics.values():
            if t.uid in rewrite:  # damaged, old format or lost records: a clean log is used as it is
                self.rewrite_topic(t)
        for sub, _ in subs:
            self.rewrite_sub(sub)
        backlog = sum(len(sub.unacked) for sub, _ in subs)
        log.info(
            "recovered",
            extra={
                "fields": {
                    "topics": len(broker.topics),
                    "subscriptions": len(broker.subs),
                    "backlog": backlog,
                    "migrated_logs": self.migrated,
                    "lost_messages": self.lost_messages,
                    "skipped_bytes": sum(self.skipped.values()),
                }
            },
        )

    def _set_aside(self, why: str) -> None:
        """Move state.json and the logs to corrupt-<time>/ (kept for inspection) and start empty."""
        aside = self.dir / f"corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        aside.mkdir()
        for name in ("state.json", "topics", "subs"):
            if (self.dir / name).exists():
                os.replace(self.dir / name, aside / name)
        fsync_dir(self.dir)
        self._mkdirs()
        self.set_aside += 1
        log.error("data dir unreadable, starting empty", extra={"fields": {"why": why, "moved_to": str(aside)}})

    def _damaged(self, kind: str, path: Path, damage: logformat.Damage, lost: list[int]) -> None:
        for where, n in (("tail", damage.tail_bytes), ("middle", damage.middle_bytes)):
            if n:
                self.skipped[(kind, where)] = self.skipped.get((kind, where), 0) + n
        self.lost_messages += len(lost)
        if not damage and not lost:
            return
        log.warning(
            "log damaged: cut at the last good record" if not damage.middle_bytes else "log damaged: records skipped",
            extra={
                "fields": {
                    "path": str(path),
                    "tail_bytes_cut": damage.tail_bytes,
                    "middle_bytes_skipped": damage.middle_bytes,
                    "spans": damage.spans[:10],
                    "lost_messages": len(lost),
                    "lost_seqs": lost[:20],
                }
            },
        )

    def _read_topic(self, t: TopicState, filtered: list[SubState]) -> tuple[list[int], dict[int, SeqSet], int, bool]:
        """Fill t's log from disk; returns the seqs lost, the seqs each filtered subscription (by uid) accepts,
        the largest message id, and whether the log must be rewritten (damaged, old format, lost records).

        A version-2 log is streamed through a read-only map of its file, its pages released as the scan
        passes them: each message becomes its place in the file (DiskMessages), its publish time and ordering
        key, so a 10,000,000-message log is never in memory at once. An old-format log is read whole."""
        path = self._topic_path(t.uid)
        accepted = {sub.uid: SeqSet() for sub in filtered}
        data = t.data
        if isinstance(data, DiskMessages):
            data.loading = None  # places in the log from the start (the old format switches back below)
        if not path.exists() or path.stat().st_size == 0:
            return [], accepted, 0, False  # a topic nothing was published to: its log starts with the next publish
        with open(path, "rb") as fh:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            if mm[: len(logformat.TOPIC_MAGIC)] != logformat.TOPIC_MAGIC:
                if isinstance(data, DiskMessages):
                    data.loading = []  # bytes until the rewrite in the new format
                lost, max_id = self._read_topic_whole(t, bytes(mm), filtered, accepted)
                return lost, accepted, max_id, True
            base, records, damage = logformat.scan_topic(mm)
            lost = []
            max_id = 0
            last = None
            released = 0
            parse = PubsubMessage.FromString
            if base is not None:
                t.base = base
            for seq, start, end in records:
                if base is None:  # header unreadable: the first good record says where the log starts
                    base = t.base = seq
                if seq < t.base:  # below the base of the last rewrite: acked long ago
                    continue
                msg = _replay_record(t, seq, mm[start:end], parse, lost, filtered, accepted)
                if msg is None:  # empty, or checked but not a message: lost
                    continue
                t.restore_placed(msg, start, end - start)
                last = msg
                if start - released >= RELEASE_BYTES:  # the pages scanned so far leave this process's memory
                    upto = start - start % mmap.PAGESIZE
                    mm.madvise(mmap.MADV_DONTNEED, 0, upto)
                    released = upto
            if isinstance(data, DiskMessages):
                data.end = len(mm)
            if last is not None:  # ids grow with the sequence number: the last message has the largest
                max_id = int(last.message_id or 0)
            self._damaged("topic", path, damage, lost)
            return lost, accepted, max_id, bool(damage) or base is None or bool(t.lost)
        finally:
            mm.close()

    def _read_topic_whole(
        self, t: TopicState, raw: bytes, filtered: list[SubState], accepted: dict[int, SeqSet]
    ) -> tuple[list[int], int]:
        """An old-format (version 1) log, read whole as bytes; rewritten in the new format after replay."""
        base, records, damage = logformat.read_topic(raw)
        self.migrated += 1
        if base is None:
            base = records[0][0] if records else 0
        t.base = base
        lost: list[int] = []
        max_id = 0
        for seq, blob in records:
            if seq < t.base:
                continue
            # no checksums in an old log: a damaged record shows as one that does not parse
            msg = _replay_record(t, seq, blob, t.restore, lost, filtered, accepted)
            if msg is not None:
                max_id = max(max_id, int(msg.message_id or 0))
        self._damaged("topic", self._topic_path(t.uid), damage, lost)
        return lost, max_id

    def _replay_sub(self, sub: SubState, lost: list[int], accepted: SeqSet | None) -> None:
        """The subscription's unacked messages and delivery counts from its log (streamed: acks go into a
        bitmap, delivery counts are kept only for messages not yet acked at that point of the log)."""
        t = sub.topic
        path = self._sub_path(sub.uid)
        low = sub.start_seq
        acked = SeqSet()
        attempts: dict[int, int] = {}
        size = path.stat().st_size if path.exists() else 0
        mm = None
        if size:
            with open(path, "rb") as fh:
                mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            records, damage = logformat.scan_sub(mm if mm is not None else b"")
            for kind, seq in records:
                if kind == Record.DELIVERED:
                    if seq >= low and seq not in acked:
                        attempts[seq] = attempts.get(seq, 0) + 1
                elif kind == Record.ACKED:
                    acked.add(seq)
                    attempts.pop(seq, None)
                elif kind == Record.WATERMARK:
                    low = seq
                    acked.clear()
                    attempts = {s: n for s, n in attempts.items() if s >= low}
        finally:
            if mm is not None:
                mm.close()
        if size and damage.version == 1:
            self.migrated += 1
        self._damaged("subscription", path, damage, [])
        start = max(low, t.base)
        unacked = SeqSet.from_range(start, t.next_seq)
        for seq in acked.iter_range(start, t.next_seq):
            unacked.discard(seq)
        for seq in lost:
            unacked.discard(seq)
        if accepted is not None:
            for seq in iter(unacked):
                if seq not in accepted:
                    unacked.discard(seq)
        sub.restore(unacked, attempts)

    def report(self) -> dict[str, Any]:
        """What replay at start skipped (for /metrics): bytes by log kind and place, messages lost."""
        return {
            "skipped_bytes": [{"log": k, "where": w, "bytes": n} for (k, w), n in sorted(self.skipped.items())],
            "lost_messages": self.lost_messages,
            "migrated_logs": self.migrated,
            "set_aside": self.set_aside,
            "write_failures": self.write_failures,
        }

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
