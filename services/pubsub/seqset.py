"""A compact set of message sequence numbers: one bit per sequence number from ``base`` on.

A subscription's unacknowledged messages are almost always one contiguous run with holes punched by acks
(and, with a filter, by messages it never took). As a Python ``set`` of ints that cost about 75 B a message
(set slot, int object, heap slot); as a bitmap it costs one bit of the span from the lowest member to the
highest, whatever the pattern of acks: 1.25 MB for a 10,000,000-message backlog. Scans (the lowest member
from a place on, the gaps of a range) run in C (``re`` over the bytes, ``int.bit_count``), not a Python loop
per member. The bitmap's prefix of empty bytes is dropped by :meth:`SeqSet.trim` as the backlog drains.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_NONZERO = re.compile(rb"[^\x00]")
_NOT_FULL = re.compile(rb"[^\xff]")
_LOW_BIT = [(b & -b).bit_length() - 1 for b in range(256)]  # index of the lowest set bit of each byte (-1: 0)


class SeqSet:
    """A set of non-negative ints kept as a bitmap over [base, base + 8 * len(bits))."""

    __slots__ = ("_base", "_bits", "_count", "_first")

    def __init__(self, seqs: Iterable[int] = ()) -> None:
        self._base = 0  # a multiple of 8: the sequence number of bit 0 of byte 0
        self._bits = bytearray()
        self._count = 0
        self._first = 0  # no set bit in any byte before this index (a hint for the scans from the bottom)
        for s in seqs:
            self.add(s)

    @classmethod
    def from_range(cls, lo: int, hi: int) -> SeqSet:
        out = cls()
        out.add_range(lo, hi)
        return out

    # ---------------------------------------------------------------- size and membership
    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        i = seq - self._base
        if i < 0:
            return False
        byte = i >> 3
        return byte < len(self._bits) and bool(self._bits[byte] >> (i & 7) & 1)

    def nbytes(self) -> int:
        """Bytes of the bitmap (what the set costs, bar a constant)."""
        return len(self._bits)

    # ---------------------------------------------------------------- changes
    def _cover(self, lo: int, hi: int) -> None:
        """Grow the bitmap so that [lo, hi) lies inside it."""
        if not self._bits:
            self._base = lo & ~7
            self._first = 0
        elif lo < self._base:
            new_base = lo & ~7
            pad = (self._base - new_base) >> 3
            self._bits[0:0] = bytes(pad)
            self._base = new_base
            self._first = 0
        need = ((hi - self._base) + 7) >> 3
        if need > len(self._bits):
            self._bits.extend(bytes(need - len(self._bits)))

    def add(self, seq: int) -> bool:
        """Add seq; True when it was not there."""
        self._cover(seq, seq + 1)
        i = seq - self._base
        byte, mask = i >> 3, 1 << (i & 7)
        old = self._bits[byte]
        if old & mask:
            return False
        self._bits[byte] = old | mask
        self._count += 1
        self._first = min(self._first, byte)
        return True

    def add_range(self, lo: int, hi: int) -> None:
        """Add every seq in [lo, hi)."""
        if hi <= lo:
            return
        self._cover(lo, hi)
        before = self.count_range(lo, hi)
        a, b = lo - self._base, hi - self._base
        bits = self._bits
        first_full, last_full = (a + 7) >> 3, b >> 3  # bytes wholly inside [a, b)
        if first_full < last_full:
            bits[first_full:last_full] = b"\xff" * (last_full - first_full)
            for i in range(a, first_full << 3):
                bits[i >> 3] |= 1 << (i & 7)
            for i in range(last_full << 3, b):
                bits[i >> 3] |= 1 << (i & 7)
        else:
            for i in range(a, b):
                bits[i >> 3] |= 1 << (i & 7)
        self._count += (hi - lo) - before
        self._first = min(self._first, a >> 3)

    def update(self, seqs: Iterable[int]) -> None:
        for s in seqs:
            self.add(s)

    def discard(self, seq: int) -> bool:
        """Remove seq; True when it was there."""
        i = seq - self._base
        if i < 0:
            return False
        byte = i >> 3
        bits = self._bits
        if byte >= len(bits):
            return False
        mask = 1 << (i & 7)
        old = bits[byte]
        if not old & mask:
            return False
        bits[byte] = old & ~mask
        self._count -= 1
        return True

    def clear(self) -> None:
        self._bits = bytearray()
        self._count = 0
        self._first = 0

    def trim(self) -> None:
        """Drop the bitmap's bytes below its lowest member (all zero): memory follows the backlog as it drains."""
        if not self._count:
            self.clear()
            return
        m = _NONZERO.search(self._bits, self._first)
        k = m.start() if m is not None else len(self._bits)
        if k:
            del self._bits[:k]
            self._base += k << 3
        self._first = 0

    # ---------------------------------------------------------------- scans
    def first(self, start: int = 0) -> int | None:
        """The lowest member >= start; None when there is none."""
        if not self._count:
            return None
        bits = self._bits
        i = max(start - self._base, 0)
        if (i >> 3) < self._first:  # nothing set below the hint
            i = self._first << 3
        byte = i >> 3
        if byte >= len(bits):
            return None
        from_hint = byte == self._first and not i & 7  # a scan from the hint may move it up
        v = bits[byte] >> (i & 7)
        if v:
            if from_hint:
                self._first = byte
            return self._base + i + _LOW_BIT[v]
        m = _NONZERO.search(bits, byte + 1)
        k = m.start() if m is not None else len(bits)
        if from_hint:
            self._first = k
        return None if m is None else self._base + (k << 3) + _LOW_BIT[bits[k]]

    def min(self) -> int | None:
        return self.first(self._base)

    def iter_range(self, lo: int, hi: int) -> Iterator[int]:
        """The members in [lo, hi), ascending (members may be removed meanwhile, not added below hi)."""
        s = self.first(lo)
        while s is not None and s < hi:
            yield s
            s = self.first(s + 1)

    def __iter__(self) -> Iterator[int]:
        return self.iter_range(self._base, self._base + 8 * len(self._bits))

    def gaps(self, lo: int, hi: int) -> Iterator[int]:
        """The seqs in [lo, hi) that are NOT members, ascending (full bytes skipped in C)."""
        seq = lo
        bits, base = self._bits, self._base
        while seq < hi:
            i = seq - base
            if i < 0 or (i >> 3) >= len(bits):
                yield seq
                seq += 1
                continue
            if not i & 7 and bits[i >> 3] == 0xFF:
                m = _NOT_FULL.search(bits, i >> 3)
                seq = base + ((m.start() if m is not None else len(bits)) << 3)
                continue
            if not bits[i >> 3] >> (i & 7) & 1:
                yield seq
            seq += 1

    def count_range(self, lo: int, hi: int) -> int:
        """Members in [lo, hi)."""
        a, b = max(lo - self._base, 0), min(hi - self._base, 8 * len(self._bits))
        if b <= a:
            return 0
        chunk = int.from_bytes(self._bits[a >> 3 : (b + 7) >> 3], "little")
        chunk >>= a & 7
        chunk &= (1 << (b - a)) - 1
        return chunk.bit_count()

    def count_from(self, start: int, limit: int) -> int:
        """Members >= start, counted up to limit (a cheap "at least limit?")."""
        n = 0
        step = max(8 * 4096, 8 * limit)
        hi = self._base + 8 * len(self._bits)
        lo = start
        while lo < hi and n < limit:
            n += self.count_range(lo, lo + step)
            lo += step
        return min(n, limit)
