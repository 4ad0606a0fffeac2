"""The kinds of record in a subscription's delivery log, shared by the broker and the on-disk store."""

from __future__ import annotations

from enum import IntEnum


class Record(IntEnum):
    """One byte per record (its ASCII letter on disk), followed by a sequence number."""

    WATERMARK = ord("W")  # everything below seq is acked
    ACKED = ord("A")  # seq is acked (or gone for good: dead-lettered, expired by retention)
    DELIVERED = ord("D")  # seq was delivered once more (delivery counts survive restarts)


SubRecord = tuple[Record, int]
