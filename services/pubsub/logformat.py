"""The on-disk record formats of the --data-dir logs, with a CRC per record, and their recovery scans.

Version 2 (written since records carry checksums):

- topic log: ``TOPIC_MAGIC``, ``<q base><I crc(base)>``, then records
  ``<I crc><I length><q seq><PubsubMessage bytes>``, the CRC over length, seq and the message
  (length 0: a message known to be lost, kept so that it is reported once, not at every start);
- subscription log: ``SUB_MAGIC``, then frames ``<I crc><I count>`` + count 9-byte ``<B kind><q seq>``
  records, one frame per journal write (an ack batch, a pull's deliveries), the CRC over count and records.
  A frame that does not check is skipped whole: its acks are lost, so those messages are delivered again.

Version 1 (no magic): a topic log is ``<q base>`` then ``<I length><message>``; a subscription log is
9-byte ``<B kind><q seq>`` records. Both are read (and rewritten as version 2 on start).

The checksum is CRC32C (google-crc32c's C code: about 0.2 us for a 200-byte message, where zlib's crc32
costs 1 us a call; the loops are ``map`` calls, so a publish of 1000 messages stays in C). A record of
zeros never checks (the CRC of zero bytes is not zero),
so a zero-filled tail is cut, not replayed; a sequence number must grow from record to record.
Reading never raises on the bytes: what does not check is skipped and reported in a :class:`Damage`.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import add

from google_crc32c import extend as _extend
from google_crc32c import value as _crc

from services.pubsub.records import Record

# As an old log's first 8 bytes (its base, little-endian i64) both magics are negative: never a real base.
TOPIC_MAGIC = b"HYPT\x02\x00\x00\xff"
SUB_MAGIC = b"HYPS\x02\x00\x00\xff"
_BASE = struct.Struct("<qI")
_REC = struct.Struct("<IIq")  # crc, length, seq
_LS = struct.Struct("<Iq")  # the checked part of a record header: length, seq
_CRC = struct.Struct("<I")
_FRAME = struct.Struct("<II")  # crc, count of the records that follow
_COUNT = struct.Struct("<I")
_KS = struct.Struct("<Bq")
_V1_BASE = struct.Struct("<q")
_V1_LEN = struct.Struct("<I")
_V1_SUB = struct.Struct("<Bq")
_KINDS = frozenset(int(r) for r in Record)
_NONZERO = re.compile(rb"[^\x00]")
Buffer = bytes | mmap.mmap  # what the scans read: a log's bytes or a read-only map of its file
SUB_FRAME = 4096  # records per subscription-log frame at most (a rewrite writes several)
TOPIC_HEADER_SIZE = len(TOPIC_MAGIC) + _BASE.size


@dataclass
class Damage:
    """What a recovery scan skipped in one log."""

    tail_bytes: int = 0  # cut after the last good record (torn write, zero fill, garbage at the end)
    middle_bytes: int = 0  # skipped between good records
    spans: list[tuple[int, int]] = field(default_factory=list)  # (offset, length) of each skipped range
    version: int = 2

    def skip(self, offset: int, length: int, tail: bool) -> None:
        if tail:
            self.tail_bytes += length
        else:
            self.middle_bytes += length
        self.spans.append((offset, length))

    def __bool__(self) -> bool:
        return bool(self.tail_bytes or self.middle_bytes)


# ---------------------------------------------------------------- writing
def topic_header(base: int) -> bytes:
    return TOPIC_MAGIC + _BASE.pack(base, _crc(_V1_BASE.pack(base)))


def topic_records(seq0: int, blobs: list[bytes]) -> bytes:
    """Records of blobs at seq0, seq0 + 1, ...: each ``crc, length, seq, blob``, the CRC over the last three."""
    lss = list(map(_LS.pack, map(len, blobs), range(seq0, seq0 + len(blobs))))
    crcs = map(_extend, map(_crc, lss), blobs)
    return b"".join(map(add, map(add, map(_CRC.pack, crcs), lss), blobs))


def sub_records(records: Iterable[tuple[int, int]]) -> bytes:
    """Frames of up to SUB_FRAME records: ``crc, count`` then count ``kind, seq``, the CRC over all but itself."""
    kss = [_KS.pack(kind, seq) for kind, seq in records]
    out = []
    for i in range(0, len(kss), SUB_FRAME):
        body = _COUNT.pack(len(kss[i : i + SUB_FRAME])) + b"".join(kss[i : i + SUB_FRAME])
        out.append(_CRC.pack(_crc(body)) + body)
    return b"".join(out)


# ---------------------------------------------------------------- reading
def read_topic(raw: bytes) -> tuple[int | None, list[tuple[int, bytes]], Damage]:
    """(base or None when unreadable, [(seq, message bytes)] in order, damage) of a topic log of either version."""
    if raw.startswith(TOPIC_MAGIC):
        return _read_topic_v2(raw)
    return _read_topic_v1(raw)


def _read_topic_v2(raw: bytes) -> tuple[int | None, list[tuple[int, bytes]], Damage]:
    base, records, damage = scan_topic(raw)
    return base, [(seq, raw[start:end]) for seq, start, end in records], damage


def scan_topic(raw: Buffer) -> tuple[int | None, Iterator[tuple[int, int, int]], Damage]:
    """A version-2 topic log read as it is iterated, never whole: (base or None when unreadable, an iterator of
    (seq, offset of the message's bytes, their end), the damage, filled in as the iterator goes).

    ``raw`` may be an ``mmap`` of the log: only the pages being checked need be in memory."""
    damage = Damage()
    base: int | None = None
    pos = len(TOPIC_MAGIC)
    if len(raw) >= TOPIC_HEADER_SIZE:
        b, crc = _BASE.unpack_from(raw, pos)
        if _crc(raw[pos : pos + 8]) == crc:
            base = b
        else:
            damage.skip(pos, _BASE.size, tail=False)
    return base, _scan_records(raw, base, damage), damage


def _scan_records(raw: Buffer, base: int | None, damage: Damage) -> Iterator[tuple[int, int, int]]:
    pos = min(len(raw), TOPIC_HEADER_SIZE)
    last = -1 if base is None else base - 1
    n = len(raw)
    while pos < n:
        rec = _record_at(raw, pos, last)
        if rec is not None:
            seq, end = rec
            yield seq, pos + _REC.size, end
            last, pos = seq, end
            continue
        nxt = _resync(raw, pos + 1, last)
        if nxt is None:
            damage.skip(pos, n - pos, tail=True)
            break
        damage.skip(pos, nxt - pos, tail=False)
        pos = nxt


def _record_at(raw: Buffer, pos: int, last: int) -> tuple[int, int] | None:
    """(seq, end offset) when a checked record starts at pos with a seq after last; None otherwise."""
    if pos + _REC.size > len(raw):
        return None
    crc, length, seq = _REC.unpack_from(raw, pos)
    end = pos + _REC.size + length
    if end > len(raw) or seq <= last:
        return None
    if _crc(raw[pos + 4 : end]) != crc:
        return None
    return seq, end


def _resync(raw: Buffer, pos: int, last: int) -> int | None:
    """The next offset from pos where a checked record starts; None when there is none."""
    n = len(raw)
    zeros = bytes(_REC.size)
    while pos + _REC.size <= n:
        if raw[pos : pos + _REC.size] == zeros:  # no record header is all zeros: jump over zero fill
            m = _NONZERO.search(raw, pos)
            if m is None:
                return None
            pos = max(pos + 1, m.start() - _REC.size + 1)
            continue
        if _record_at(raw, pos, last) is not None:
            return pos
        pos += 1
    return None


def _read_topic_v1(raw: bytes) -> tuple[int | None, list[tuple[int, bytes]], Damage]:
    """Old logs have no checksums: read until the first record that cannot be one (empty, past the end)."""
    damage = Damage(version=1)
    if len(raw) < _V1_BASE.size:
        if raw:
            damage.skip(0, len(raw), tail=True)
        return None, [], damage
    (base,) = _V1_BASE.unpack_from(raw, 0)
    if base < 0:
        damage.skip(0, len(raw), tail=True)
        return None, [], damage
    pos = _V1_BASE.size
    out: list[tuple[int, bytes]] = []
    seq = base
    while pos < len(raw):
        if pos + _V1_LEN.size > len(raw):
            break
        (length,) = _V1_LEN.unpack_from(raw, pos)
        end = pos + _V1_LEN.size + length
        if length == 0 or end > len(raw):
            break
        out.append((seq, raw[pos + _V1_LEN.size : end]))
        seq += 1
        pos = end
    if pos < len(raw):
        damage.skip(pos, len(raw) - pos, tail=True)
    return base, out, damage


def read_sub(raw: bytes) -> tuple[list[tuple[int, int]], Damage]:
    """[(kind, seq)] of a subscription log of either version, and what was skipped."""
    records, damage = scan_sub(raw)
    return list(records), damage


def scan_sub(raw: Buffer) -> tuple[Iterator[tuple[int, int]], Damage]:
    """(kind, seq) records of a subscription log of either version as they are iterated (``raw`` may be an
    ``mmap``), and what was skipped, filled in as the iterator goes."""
    if raw[: len(SUB_MAGIC)] == SUB_MAGIC:
        damage = Damage()
        return _scan_sub_v2(raw, damage), damage
    damage = Damage(version=1)
    usable = len(raw) - len(raw) % _V1_SUB.size
    out = [(k, s) for k, s in _V1_SUB.iter_unpack(raw[:usable]) if k in _KINDS]
    if usable < len(raw):
        damage.skip(usable, len(raw) - usable, tail=True)
    return iter(out), damage


def _scan_sub_v2(raw: Buffer, damage: Damage) -> Iterator[tuple[int, int]]:
    pos, n = len(SUB_MAGIC), len(raw)
    while pos < n:
        end = _frame_at(raw, pos)
        if end is not None:
            for k, s in _KS.iter_unpack(raw[pos + 8 : end]):
                if k in _KINDS:
                    yield k, s
            pos = end
            continue
        nxt = pos + 1
        while nxt + 8 <= n and _frame_at(raw, nxt) is None:
            nxt += 1
        if nxt + 8 > n:
            damage.skip(pos, n - pos, tail=True)
            break
        damage.skip(pos, nxt - pos, tail=False)
        pos = nxt


def _frame_at(raw: Buffer, pos: int) -> int | None:
    """The end offset of a checked subscription-log frame starting at pos; None when none starts there."""
    if pos + 8 > len(raw):
        return None
    crc, count = _FRAME.unpack_from(raw, pos)
    end: int = pos + 8 + _KS.size * count
    if count == 0 or end > len(raw) or _crc(raw[pos + 4 : end]) != crc:
        return None
    return end
