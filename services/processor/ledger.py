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

Lookups of concurrent pushes go together in one query per table (``Lookups``), restricted to
the partitions of the events' dates. Each table is tracked on its own, so a crash between the
two appends redoes only the missing one. Dead-lettered ids are kept in a bounded set too.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from collections import OrderedDict
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
    def __init__(
        self,
        lookup: Callable[[str, list[tuple[str, str | None]]], Any] | None = None,
        *,
        max_ids: int = 100_000,
        max_age_s: float = 900.0,
        start_margin_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # lookup(table, [(message_id, partition date or None)]) -> awaitable of the ids found
        self.lookup = lookup
        self.max_ids, self.max_age_s, self.clock = max_ids, max_age_s, clock
        self.floor = clock() + start_margin_s  # publish time (epoch s)
        # per table: id -> (written at, publish time or None), oldest first
        self.recent: dict[str, OrderedDict[str, tuple[float, float | None]]] = {t: OrderedDict() for t in TABLES}
        self.deadlettered = BoundedSet(max_ids)
        self.written = dict.fromkeys(TABLES, 0)  # appended by this process, for /health
        self.lookups = 0  # ids looked up in the warehouse

    def add(self, table: str, entries: Iterable[tuple[str, float | None]]) -> None:
        """Record durable appends: (message id, publish time) pairs; evict what is over the bounds."""
        recent, now = self.recent[table], self.clock()
        n = 0
        for mid, published in entries:
            recent[mid] = (now, published)
            recent.move_to_end(mid)
            n += 1
        self.written[table] += n
        oldest = now - self.max_age_s
        while recent:
            mid, (at, published) = next(iter(recent.items()))
            if len(recent) <= self.max_ids and at >= oldest:
                break
            del recent[mid]
            if published is not None and published > self.floor:
                self.floor = published

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
            found = await asyncio.gather(*(self.lookup(t, [(message_id, date)]) for t in ask))
            for table, hit in zip(ask, found, strict=True):
                if hit:
                    self.recent[table][message_id] = (self.clock(), None)  # published before the floor
                else:
                    needed.append(table)
        return [t for t in tables if t in needed]

    def size(self) -> int:
        return sum(len(r) for r in self.recent.values()) + len(self.deadlettered)


class Lookups:
    """``await lookups(table, [(id, date)])`` -> True when found; concurrent calls share one query.

    While one query runs, the ids asked for meanwhile queue up and go together in the next.
    """

    def __init__(self, warehouse_dir: str | os.PathLike[str], max_ids: int = 5000) -> None:
        self.warehouse_dir = Path(warehouse_dir)
        self.max_ids = max_ids
        self._pending: dict[str, dict[str, tuple[str | None, asyncio.Future[bool]]]] = {t: {} for t in TABLES}
        self._task: asyncio.Task[None] | None = None
        self.queries = 0

    async def __call__(self, table: str, ids: list[tuple[str, str | None]]) -> bool:
        loop = asyncio.get_running_loop()
        futures = []
        pending = self._pending[table]
        for mid, date in ids:
            entry = pending.get(mid)
            if entry is None:
                entry = pending[mid] = (date, loop.create_future())
            futures.append(entry[1])
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
                try:
                    found = await asyncio.to_thread(self._query, table, {m: d for m, (d, _) in batch.items()})
                except Exception as exc:
                    log.warning("ledger lookup failed", extra={"fields": {"table": table, "error": str(exc)}})
                    failure = LookupFailed(f"warehouse lookup failed: {type(exc).__name__}: {exc}")
                    for _, future in batch.values():
                        if not future.done():
                            future.set_exception(failure)
                    continue
                for mid, (_, future) in batch.items():
                    if not future.done():
                        future.set_result(mid in found)

    def _query(self, table: str, ids: dict[str, str | None]) -> set[str]:
        from services.warehouse.query import files

        if not files(self.warehouse_dir, table):
            return set()
        self.queries += 1
        sql, params = lookup_sql(table, ids)
        try:
            return _run_query(self.warehouse_dir, sql, params)
        except Exception:
            if not files(self.warehouse_dir, table):  # emptied meanwhile (a test, a reset)
                return set()
            return _run_query(self.warehouse_dir, sql, params)  # once more: compaction may have moved files


def lookup_sql(table: str, ids: dict[str, str | None]) -> tuple[str, list[str]]:
    """``SELECT message_id FROM <table> WHERE source=? AND message_id IN (...)`` (+ the partitions)."""
    if table not in TABLES:
        raise ValueError(f"not a processor table: {table}")
    marks = ", ".join("?" for _ in ids)
    sql = f"SELECT message_id FROM {table} WHERE source = ? AND message_id IN ({marks})"
    params = [SOURCE, *ids]
    dates = set(ids.values())
    if None not in dates:  # only the partitions of the events' dates (file pruning)
        sql += f" AND date IN ({', '.join('CAST(? AS DATE)' for _ in dates)})"
        params += sorted(d for d in dates if d is not None)
    return sql, params


def _run_query(warehouse_dir: Path, sql: str, params: list[str]) -> set[str]:
    from services.warehouse import query as q

    if "params" in inspect.signature(q.query).parameters:
        result = q.query(warehouse_dir, sql, params=params)
    else:  # until the warehouse takes parameters: quoted literals
        parts = sql.split("?")
        literal = [f"'{p.replace(chr(39), chr(39) * 2)}'" for p in params]
        result = q.query(warehouse_dir, "".join(a + b for a, b in zip(parts, [*literal, ""], strict=True)))
    return {v for v in result.column("message_id").to_pylist() if v is not None}
