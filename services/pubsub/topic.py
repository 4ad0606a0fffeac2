"""A topic's state: its message log (serialized PubsubMessage bytes, publish times, ordering keys).

The log is indexed by a per-topic sequence number starting at ``base``; subscriptions and snapshots
hold sequence numbers only. Nothing here locks: the broker's lock is held by every caller.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google.protobuf import timestamp_pb2

from services.pubsub.disklog import DiskMessages
from services.pubsub.pb import types

if TYPE_CHECKING:
    from services.pubsub.subscription import SubState

Topic: Any = types.Topic.pb()
Subscription: Any = types.Subscription.pb()
Snapshot: Any = types.Snapshot.pb()
PubsubMessage: Any = types.PubsubMessage.pb()
PullResponse: Any = types.PullResponse.pb()


@dataclass(eq=False)
class TopicState:
    """One topic and its message log."""

    uid: int
    pb: Any
    base: int = 0
    # the messages' bytes; with --data-dir a DiskMessages (services/pubsub/disklog.py: offsets into the log)
    data: list[bytes] | DiskMessages = field(default_factory=list)
    ts: array[float] = field(default_factory=lambda: array("d"))
    keys: list[str] = field(default_factory=list)
    subs: dict[str, SubState] = field(default_factory=dict)
    deleted: bool = False
    published: int = 0
    published_bytes: int = 0
    retained_bytes: int = 0  # sum of the lengths in data

    @property
    def next_seq(self) -> int:
        return self.base + len(self.data)

    def message(self, seq: int) -> Any:
        return PubsubMessage.FromString(self.data[seq - self.base])

    def size(self, seq: int) -> int:
        """The length of a message's bytes (0: lost in a damaged log) without reading them from disk."""
        i = seq - self.base
        return (
            self.data.lengths[i]
            if isinstance(self.data, DiskMessages) and self.data.loading is None
            else len(self.data[i])
        )

    def blobs(self, seqs: list[int]) -> list[bytes]:
        """The bytes of these messages (with --data-dir, read from the log a run at a time)."""
        base, data = self.base, self.data
        if isinstance(data, DiskMessages):
            return data.read_many([s - base for s in seqs])
        return [data[s - base] for s in seqs]

    def key(self, seq: int) -> str:
        return self.keys[seq - self.base]

    def first_seq_at(self, t: float) -> int:
        """The first sequence number published at or after time t."""
        return self.base + bisect.bisect_left(self.ts, t)

    def append(self, messages: Sequence[Any], first_id: int, now: float) -> list[bytes]:
        """Stamp messages (ids from first_id, publish time now) in place and log them; returns their bytes."""
        blobs, keys = stamp(messages, first_id, now)
        self.add(blobs, keys, now)
        return blobs

    def add(self, blobs: list[bytes], keys: list[str], now: float) -> None:
        """Log stamped messages (see :func:`stamp`)."""
        self.data.extend(blobs)
        self.ts.extend([now] * len(blobs))
        self.keys.extend(keys)
        self.published += len(blobs)
        size = sum(map(len, blobs))
        self.published_bytes += size
        self.retained_bytes += size

    def restore(self, blob: bytes) -> Any:
        """Append one logged message read back from disk (no stamping, no counters); returns it parsed."""
        msg = PubsubMessage.FromString(blob)
        self.data.append(blob)
        self.retained_bytes += len(blob)
        self.ts.append(msg.publish_time.ToNanoseconds() / 1e9)
        self.keys.append(msg.ordering_key)
        return msg

    def restore_lost(self, n: int) -> None:
        """n messages whose log records did not check: empty placeholders, never delivered."""
        last = self.ts[-1] if self.ts else 0.0
        self.data.extend([b""] * n)
        self.ts.extend([last] * n)
        self.keys.extend([""] * n)

    def truncate(self, low: int) -> None:
        """Drop the log below sequence number low."""
        drop = low - self.base
        data = self.data
        self.retained_bytes -= data.nbytes(drop) if isinstance(data, DiskMessages) else sum(map(len, data[:drop]))
        del self.data[:drop]
        del self.ts[:drop]
        del self.keys[:drop]
        self.base = low


def stamp(messages: Sequence[Any], first_id: int, now: float) -> tuple[list[bytes], list[str]]:
    """Set message ids (from first_id) and the publish time in place; returns their bytes and ordering keys."""
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(now * 1e9))
    blobs: list[bytes] = []
    keys: list[str] = []
    for i, m in enumerate(messages):
        m.message_id = str(first_id + i)
        m.publish_time.CopyFrom(ts)
        blobs.append(m.SerializeToString())
        keys.append(m.ordering_key)
    return blobs, keys


@dataclass(eq=False)
class SnapshotState:
    pb: Any
    topic: TopicState
    seqs: array[int]  # unacked seqs of the subscription at creation, sorted
    end: int  # topic.next_seq at creation: everything from here on is included

    def low(self) -> int:
        return self.seqs[0] if self.seqs else self.end
