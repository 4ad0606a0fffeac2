"""A topic's retained messages with ``--data-dir``: where each one is in the topic log, read back on delivery.

In memory a topic keeps its messages as a list of bytes (about 250 B a 200-byte message). With a data dir
every message is in the topic log already, so :class:`DiskMessages` keeps only its place there, the file
offset of its bytes and their length (12 B a message), and reads it with ``os.pread`` when it is delivered
(from the page cache while it is recent). It is the list's stand-in in ``TopicState.data``: ``len``,
indexing (``b""`` for a message lost in a damaged log, as in memory), slicing, ``extend`` and ``del`` of
a prefix (retention).

The offsets follow the log's format (:mod:`services.pubsub.logformat`): a message's record is a 16-byte
header then its bytes, appended in sequence order, so ``extend`` works them out from the end of the log.
Replay at start streams a log through a map of its file and records each message's place (:meth:`place`);
only an old-format log is held as bytes (``loading``) until the rewrite that follows replay
(:meth:`services.pubsub.storage.Store.rewrite_topic`) writes it out and calls :meth:`rewritten`.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable, Iterator
from itertools import accumulate
from pathlib import Path
from typing import overload

RECORD_HEADER = 16  # logformat's <I crc><I length><q seq>
RUN_MAX = 4096  # messages read by one pread at most
_RECORD_PLUS = RECORD_HEADER.__add__


class DiskMessages:
    """The messages of one topic log: offsets and lengths of their bytes in ``path``."""

    def __init__(self, path: Path, loading: bool = False) -> None:
        self.path = path
        self.end = 0  # where the next record goes: the log's size (the store sets it before each append)
        self.offsets = array("q")
        self.lengths = array("I")
        self.loading: list[bytes] | None = [] if loading else None  # replayed bytes until the first rewrite
        self._fd: int | None = None

    # ---------------------------------------------------------------- the list's interface
    def __len__(self) -> int:
        return len(self.loading) if self.loading is not None else len(self.offsets)

    @overload
    def __getitem__(self, i: int) -> bytes: ...

    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...

    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if self.loading is not None:
            return self.loading[i]
        if isinstance(i, slice):
            return [self._read(j) for j in range(*i.indices(len(self.offsets)))]
        if i < 0:
            i += len(self.offsets)
        return self._read(i)

    def __iter__(self) -> Iterator[bytes]:
        for i in range(len(self)):
            yield self[i]

    def extend(self, blobs: Iterable[bytes]) -> None:
        """Messages just appended to the log (in this order, right after what it held)."""
        if self.loading is not None:
            self.loading.extend(blobs)
            return
        sizes = list(map(len, blobs))
        starts = list(accumulate(map(_RECORD_PLUS, sizes), initial=self.end))  # each record's start, then the end
        self.end = starts.pop()
        self.offsets.extend(map(_RECORD_PLUS, starts))
        self.lengths.extend(sizes)

    def place(self, offset: int, length: int) -> None:
        """One message whose bytes are at ``offset`` in the log already (replay at start)."""
        self.offsets.append(offset)
        self.lengths.append(length)
        self.end = offset + length

    def read_many(self, indices: list[int]) -> list[bytes]:
        """Messages at these indices, one ``pread`` per run of consecutive ones (a pull's batch is mostly one)."""
        if self.loading is not None:
            return [self.loading[i] for i in indices]
        offsets, lengths = self.offsets, self.lengths
        out: list[bytes] = []
        n, k = len(indices), 0
        while k < n:
            first = j = indices[k]
            end = k + 1
            while end < n and indices[end] == j + 1 and end - k < RUN_MAX:
                j += 1
                end += 1
            start, stop = offsets[first], offsets[j] + lengths[j]
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)
            buf = os.pread(self._fd, stop - start, start) if stop > start else b""
            if len(buf) != stop - start:
                raise OSError(f"topic log {self.path} is shorter than its index (offset {start})")
            if end - k == 1:
                out.append(buf)
            else:
                for i in range(first, j + 1):
                    o = offsets[i] - start
                    out.append(buf[o : o + lengths[i]])
            k = end
        return out

    def append(self, blob: bytes) -> None:
        self.extend((blob,))

    def __delitem__(self, i: slice) -> None:
        if i.start not in (None, 0) or i.step not in (None, 1):
            raise ValueError("only a prefix of a topic log is dropped")
        if self.loading is not None:
            del self.loading[i]
        else:
            del self.offsets[i]
            del self.lengths[i]

    def size(self, i: int) -> int:
        """The length of message ``i`` without reading it."""
        return len(self.loading[i]) if self.loading is not None else self.lengths[i]

    def nbytes(self, stop: int) -> int:
        """Bytes of the messages before index ``stop`` (retention without reading them)."""
        if self.loading is not None:
            return sum(map(len, self.loading[:stop]))
        return sum(self.lengths[:stop])

    # ---------------------------------------------------------------- the store's side
    def rewritten(self, header: int, lengths: Iterable[int]) -> None:
        """The log was rewritten (a new file at ``path``): after ``header`` bytes, one record per message."""
        self.close()
        self.loading = None
        self.offsets = array("q")
        self.lengths = array("I", lengths)
        end = header
        offsets = self.offsets
        for n in self.lengths:
            offsets.append(end + RECORD_HEADER)
            end += RECORD_HEADER + n
        self.end = end

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()

    def _read(self, i: int) -> bytes:
        n = self.lengths[i]
        if not n:
            return b""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        blob = os.pread(self._fd, n, self.offsets[i])
        if len(blob) != n:
            raise OSError(f"topic log {self.path} is shorter than its index (offset {self.offsets[i]})")
        return blob
