"""Which messages already left their rows in the warehouse: redelivery must not add a second row.

Bounded memory, no start-up scan. The warehouse is the durable record; the ledger keeps only the
ids this process wrote recently (at most ``max_ids`` per table, none older than ``max_age_s``)
and a **floor**, a publish time: every message this process wrote that was published after the
floor is still in memory. The floor starts at the process start (+ ``start_margin_s``: messages
published before it may have been written by an earlier process) and rises to the publish time
of every id evicted from memory. So a message is

* done, when its id is in memory;
* new, when it was published after the floor and its id is not in memory (no lookup);
* otherwise (published before the floor, or without a publish time: a redelivery after a
  restart, a Seek replay, a retry long after the first attempt) looked up in the warehouse.

Lookups of concurrent pushes go together in one read per table (``Lookups``), over only the
files that can hold them (the events' date partitions, written after the messages' publish).
Each table is tracked on its own, so a crash between the two appends redoes only the missing
one. Dead-lettered ids are kept in a bounded set too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SOURCE = "processor"
TABLES = ("cloud_run", "cloud_run_anomaly")


class LookupFailed(RuntimeError):
    """The warehouse could not be asked (the push gets a 503 and comes back)."""


class BoundedSet:
    """The last ``limit`` keys added (insertion order); older ones are forgotten."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._keys: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> None:
        self._keys[key] = None
        if len(self._keys) > self.limit:
            self._keys.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)


class Ledger:
    """Per table, the ids written recently: ``recent`` (id -> publish time), oldest first.

    Compact because it is the processor's largest live structure (200,000 ids at its bounds): a plain
    dict holding only the publish time, the insertion order in a deque of the same id objects, and the
    write time once per :meth:`add` call instead of once per id (measured: ~45% less per id than an
    ``OrderedDict`` of ``(written at, published)`` tuples; benchmarks/ledger_bench.py).
    """

    def __init__(
        self,
        lookup: Callable[[str, list[tuple[str, str | None, float | None]]], Any] | None = None,
        *,
        max_ids: int = 100_000,
        max_age_s: float = 900.0,
        start_margin_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # lookup(table, [(message_id, partition date, publish time)]) -> awaitable: found or not
        self.lookup = lookup
        self.max_ids, self.max_age_s, self.clock = max_ids, max_age_s, clock
        self.floor = clock() + start_margin_s  # publish time (epoch s)
        self.recent: dict[str, dict[str, float | None]] = {t: {} for t in TABLES}  # id -> publish time
        self._order: dict[str, deque[str]] = {t: deque() for t in TABLES}  # ids as remembered, oldest first
        self._batches: dict[str, deque[list[Any]]] = {t: deque() for t in TABLES}  # [remembered at, ids left]
        self.deadlettered = BoundedSet(max_ids)
        self.written = dict.fromkeys(TABLES, 0)  # appended by this process, for /health
        self.lookups = 0  # ids looked up in the warehouse

    def add(self, table: str, entries: Iterable[tuple[str, float | None]]) -> None:
        """Record durable appends: (message id, publish time) pairs; evict what is over the bounds."""
        self.written[table] += self._remember(table, entries)

    def _remember(self, table: str, entries: Iterable[tuple[str, float | None]]) -> int:
        recent, order, batches, now = self.recent[table], self._order[table], self._batches[table], self.clock()
        n = 0
        for mid, published in entries:
            recent[mid] = published
            order.append(mid)  # an id remembered twice is forgotten at its first place (the floor covers it)
            n += 1
        if n:
            batches.append([now, n])
        oldest = now - self.max_age_s
        while order and (len(order) > self.max_ids or batches[0][0] < oldest):
            mid = order.popleft()
            batches[0][1] -= 1
            if not batches[0][1]:
                batches.popleft()
            published = recent.pop(mid, None)
            if published is not None and published > self.floor:
                self.floor = published
        return n

    def known(self, table: str, message_id: str, published: float | None) -> bool | None:
        """True: written; False: new (no lookup needed); None: ask the warehouse."""
        if message_id in self.recent[table]:
            return True
        if published is not None and published > self.floor:
            return False
        return None

    async def needed(self, message_id: str, published: float | None, date: str | None, tables: list[str]) -> list[str]:
        """The tables among ``tables`` that have no row of this message yet."""
        needed, ask = [], []
        for table in tables:
            state = self.known(table, message_id, published)
            if state is None:
                ask.append(table)
            elif not state:
                needed.append(table)
        if ask:
            if self.lookup is None:
                return tables
            self.lookups += 1
            found = await asyncio.gather(*(self.lookup(t, [(message_id, date, published)]) for t in ask))
            for table, hit in zip(ask, found, strict=True):
                if hit:
                    self._remember(table, [(message_id, None)])  # published before the floor
                else:
                    needed.append(table)
        return [t for t in tables if t in needed]

    def size(self) -> int:
        return sum(len(r) for r in self.recent.values()) + len(self.deadlettered)


class Lookups:
    """``await lookups(table, [(id, date, published)])`` -> True when found; concurrent calls share a query.

    While one query runs, the ids asked for meanwhile queue up and go together in the next. Only
    files that can hold the rows are read: those of the events' date partitions, written after the
    earliest publish time asked about (a row is written after its message is published, and files
    are never rewritten in place: a compacted file is a new, later file), less ``clock_margin_s``.
    So redeliveries of a backlog published while the processor was down read no file at all, and
    those of messages in flight at a crash read only the last few files.
    """

    def __init__(
        self, warehouse_dir: str | os.PathLike[str], max_ids: int = 5000, clock_margin_s: float = 30.0
    ) -> None:
        self.warehouse_dir = Path(warehouse_dir)
        self.max_ids, self.clock_margin_s = max_ids, clock_margin_s
        self._pending: dict[str, dict[str, tuple[str | None, float | None, asyncio.Future[bool]]]] = {
            t: {} for t in TABLES
        }
        self._task: asyncio.Task[None] | None = None
        self.queries = 0  # DuckDB queries run
        self.failing = False
        self.files_read = 0

    async def __call__(self, table: str, ids: list[tuple[str, str | None, float | None]]) -> bool:
        loop = asyncio.get_running_loop()
        futures = []
        pending = self._pending[table]
        for mid, date, published in ids:
            entry = pending.get(mid)
            if entry is None:
                entry = pending[mid] = (date, published, loop.create_future())
            futures.append(entry[2])
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ledger-lookups")
        return any(await asyncio.gather(*futures))

    async def _run(self) -> None:
        while any(self._pending.values()):
            for table in TABLES:
                pending = self._pending[table]
                if not pending:
                    continue
                batch = dict(list(pending.items())[: self.max_ids])
                for mid in batch:
                    del pending[mid]
                asked = {m: (d, p) for m, (d, p, _) in batch.items()}
                try:
                    found = await asyncio.to_thread(self._lookup, table, asked)
                except Exception as exc:
                    level = logging.DEBUG if self.failing else logging.WARNING  # log the change, not each
                    log.log(level, "ledger lookup failed", extra={"fields": {"table": table, "error": str(exc)}})
                    self.failing = True
                    failure = LookupFailed(f"warehouse lookup failed: {type(exc).__name__}: {exc}")
                    for *_, future in batch.values():
                        if not future.done():
                            future.set_exception(failure)
                    continue
                if self.failing:
                    self.failing = False
                    log.info("ledger lookups work again")
                for mid, (*_, future) in batch.items():
                    if not future.done():
                        future.set_result(mid in found)

    def _lookup(self, table: str, ids: dict[str, tuple[str | None, float | None]]) -> set[str]:
        try:
            return self._query(table, ids)
        except Exception:  # once more with a fresh listing: compaction may have replaced a file meanwhile
            return self._query(table, ids)

    def candidates(self, table: str, ids: dict[str, tuple[str | None, float | None]]) -> list[str]:
        """The live files that can hold rows of these messages."""
        from services.warehouse.live import live_files  # what query.files lists, without importing DuckDB

        dates = {d for d, _ in ids.values()}
        published = [p for _, p in ids.values()]
        since = None if None in published else min(p for p in published if p is not None) - self.clock_margin_s
        chosen = []
        for f in live_files(self.warehouse_dir, table):
            if None not in dates and f.parent.name.removeprefix("date=") not in dates:
                continue
            if since is not None:
                try:
                    if f.stat().st_mtime < since:
                        continue
                except FileNotFoundError:
                    continue
            chosen.append(str(f))
        return chosen

    def _query(self, table: str, ids: dict[str, tuple[str | None, float | None]]) -> set[str]:
        """The ids among ``ids`` that have a row of this processor in the candidate files.

        Two columns of each candidate file through pyarrow (which the writer has loaded already): a
        DuckDB query did the same, and DuckDB's library was 35 MiB of the processor's RSS for it."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        paths = self.candidates(table, ids)
        if not paths:
            return set()
        self.queries += 1
        self.files_read += len(paths)
        wanted = pa.array(list(ids), pa.string())
        found: set[str] = set()
        for path in paths:
            with pq.ParquetFile(path) as parquet:
                if not {"message_id", "source"} <= set(parquet.schema_arrow.names):
                    continue  # a file without them holds no processor row
                part = parquet.read(columns=["message_id", "source"], use_threads=False)  # small files: no threads
            mine = pc.and_(pc.is_in(part["message_id"], value_set=wanted), pc.equal(part["source"], SOURCE))
            found.update(part["message_id"].filter(mine).to_pylist())
        return found
