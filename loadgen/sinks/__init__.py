"""Where events go: one small module per destination, all with the same three verbs.

A sink is built with the run's ``n_users`` and ``run_id`` and then gets
``send(batch, now)`` calls (``now``: epoch seconds, the send time that stamps
real-clock events and ``sent_at``), then ``close()``.
"""

from __future__ import annotations

from typing import Protocol

from loadgen.core import Batch

SINKS = ("pubsub", "http", "kafka", "jsonl", "parquet")


class SinkError(RuntimeError):
    """A destination that cannot take events; the message is one line."""


class Sink(Protocol):
    def send(self, batch: Batch, now: float) -> None: ...

    def close(self) -> None: ...
