"""A topic's state: its message log (serialized PubsubMessage bytes, publish times, ordering keys).

The log is indexed by a per-topic sequence number starting at ``base``; subscriptions and snapshots
hold sequence numbers only. Nothing here locks: the broker's lock is held by every caller.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Sequence
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


class Runs:
    """A list of values stored as runs of equal ones: ``values[i]`` from absolute index ``starts[i]`` on.

    What TopicState needs of a list: ``len``, indexing (a bisect over the runs), appending, dropping a prefix
    (``origin`` moves, the runs before it go), and, for publish times (never decreasing), ``bisect_left``."""

    __slots__ = ("_n", "_origin", "_starts", "_values")

    def __init__(self) -> None:
        self._starts = array("q")  # absolute index (counted since the first item ever) of each run's first item
        self._values: list[Any] = []
        self._origin = 0  # absolute index of item 0 (items dropped so far)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> Any:
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._values[bisect.bisect_right(self._starts, i + self._origin) - 1]

    def add(self, value: Any, n: int = 1) -> None:
        """Append value n times."""
        if n <= 0:
            return
        if not self._values or self._values[-1] != value:
            self._starts.append(self._origin + self._n)
            self._values.append(value)
        self._n += n

    def append(self, value: Any) -> None:
        self.add(value)

    def extend(self, values: Iterable[Any]) -> None:
        starts, vals = self._starts, self._values
        n = self._origin + self._n
        last = vals[-1] if vals else None
        empty = not vals
        for v in values:
            if empty or v != last:
                starts.append(n)
                vals.append(v)
                last, empty = v, False
            n += 1
        self._n = n - self._origin

    def __delitem__(self, i: slice) -> None:
        if i.start not in (None, 0) or i.step not in (None, 1):
            raise ValueError("only a prefix is dropped")
        drop = min(self._n, self._n if i.stop is None else i.stop)
        if drop <= 0:
            return
        self._origin += drop
        self._n -= drop
        if not self._n:
            self._starts, self._values = array("q"), []
            return
        k = bisect.bisect_right(self._starts, self._origin) - 1  # the run holding the new item 0
        del self._starts[:k]
        del self._values[:k]

    def bisect_left(self, value: Any) -> int:
        """The first index whose value is >= value (values never decrease)."""
        k = bisect.bisect_left(self._values, value)
        return self._n if k >= len(self._values) else max(0, self._starts[k] - self._origin)

    def runs(self) -> int:
        return len(self._values)


@dataclass(eq=False)
class TopicState:
    """One topic and its message log."""

    uid: int
    pb: Any
    base: int = 0
    # the messages' bytes; with --data-dir a DiskMessages (services/pubsub/disklog.py: offsets into the log)
    data: list[bytes] | DiskMessages = field(default_factory=list)
    # publish times and ordering keys by message, as runs of equal values: a publish request's messages share
    # one time, and a topic without ordering keys has one run of "" (8 + 8 B a message as plain lists)
    ts: Runs = field(default_factory=Runs)
    keys: Runs = field(default_factory=Runs)
    subs: dict[str, SubState] = field(default_factory=dict)
    deleted: bool = False
    published: int = 0
    published_bytes: int = 0
    retained_bytes: int = 0  # sum of the lengths in data
    lost: int = 0  # messages lost in a damaged log read back at start (empty placeholders), retained or not

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
        return str(self.keys[seq - self.base])

    def first_seq_at(self, t: float) -> int:
        """The first sequence number published at or after time t."""
        return self.base + self.ts.bisect_left(t)

    def append(self, messages: Sequence[Any], first_id: int, now: float) -> list[bytes]:
        """Stamp messages (ids from first_id, publish time now) in place and log them; returns their bytes."""
        blobs, keys = stamp(messages, first_id, now)
        self.add(blobs, keys, now)
        return blobs

    def add(self, blobs: list[bytes], keys: list[str], now: float) -> None:
        """Log stamped messages (see :func:`stamp`)."""
        self.data.extend(blobs)
        self.ts.add(now, len(blobs))
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

    def restore_placed(self, msg: Any, offset: int, length: int) -> None:
        """Append one message read back from disk by its place in the log (DiskMessages, not loading)."""
        data = self.data
        assert isinstance(data, DiskMessages)
        data.offsets.append(offset)
        data.lengths.append(length)
        data.end = offset + length
        self.retained_bytes += length
        pt = msg.publish_time
        self.ts.add((pt.seconds * 1_000_000_000 + pt.nanos) / 1e9)  # Timestamp.ToNanoseconds() / 1e9
        self.keys.add(msg.ordering_key)

    def restore_lost(self, n: int) -> None:
        """n messages whose log records did not check: empty placeholders, never delivered."""
        last = self.ts[-1] if len(self.ts) else 0.0
        self.lost += n
        data = self.data
        if isinstance(data, DiskMessages) and data.loading is None:
            for _ in range(n):
                data.place(data.end, 0)
        else:
            data.extend([b""] * n)
        self.ts.add(last, n)
        self.keys.add("", n)

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
