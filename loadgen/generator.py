"""EventGenerator: an endless, seeded stream of (event, attributes) pairs.

    gen = EventGenerator(seed=42, config=GeneratorConfig())
    for event, attributes in gen.next_batch(1000): ...

Events are drawn as columns in fixed chunks (so the sequence depends only on the
seed and the config, not on how callers slice it) and rendered on demand; with
the real clock, ``event_datetime`` and ``sent_at`` are the time of rendering.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from loadgen.config import GeneratorConfig
from loadgen.core import Batch, State, draw_events
from loadgen.render import messages

CHUNK = 4096


def concat(batches: list[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    offsets = [np.zeros(1, dtype=np.int64)]
    base = 0
    for b in batches:
        offsets.append(b.offsets[1:] + base)
        base += int(b.offsets[-1])
    fields = ("etype", "user", "client", "ts", "prev_page")
    rows: dict[str, Any] = {f: np.concatenate([getattr(b, f) for b in batches]) for f in fields}
    lines: dict[str, Any] = {f: np.concatenate([getattr(b, f) for b in batches]) for f in ("product", "price", "qty")}
    tail = ("value", "tax", "shipping", "coupon", "affiliation", "txn", "kind")
    rest: dict[str, Any] = {f: np.concatenate([getattr(b, f) for b in batches]) for f in tail}
    return Batch(offsets=np.concatenate(offsets), **rows, **lines, **rest)


class EventGenerator:
    def __init__(self, seed: int | None = None, config: GeneratorConfig | None = None) -> None:
        self.config = config or GeneratorConfig()
        self.seed = seed
        self.run_id = self.config.run_id or uuid.uuid4().hex[:12]
        self._rng = np.random.default_rng(seed)
        self._state = State()
        self._buffer: Batch | None = None
        self._cursor = 0
        self.generated = 0

    def configure(self, config: GeneratorConfig) -> None:
        """Switch to a new mix, rates or drift; the next event follows it (the run_id stays)."""
        self.config = config
        self._buffer, self._cursor = None, 0

    def prime(self) -> None:
        """Draw the next chunk now (before a timed loop starts)."""
        if self._buffer is None or self._cursor >= len(self._buffer):
            self._buffer, self._cursor = draw_events(self._rng, self.config, CHUNK, self._state), 0

    def next_columns(self, n: int) -> Batch:
        """The next n events as columns (for the fast file and Pub/Sub paths)."""
        pieces = []
        while n > 0:
            if self._buffer is None or self._cursor >= len(self._buffer):
                self._buffer, self._cursor = draw_events(self._rng, self.config, CHUNK, self._state), 0
            take = min(n, len(self._buffer) - self._cursor)
            pieces.append(self._buffer.take(self._cursor, self._cursor + take))
            self._cursor += take
            n -= take
            self.generated += take
        return concat(pieces) if pieces else draw_events(self._rng, self.config, 0, self._state)

    def next_batch(self, n: int, now: float | None = None) -> list[tuple[dict, dict[str, str]]]:
        """The next n (event, attributes) pairs."""
        return messages(self.next_columns(n), self.config.n_users, self.run_id, now)

    def __iter__(self) -> Iterator[tuple[dict, dict[str, str]]]:
        while True:
            yield from self.next_batch(256)
