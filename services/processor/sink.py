"""Group commit into the warehouse: pushes share Parquet files, each waits until its rows are durable.

``await sink.write({"cloud_run": [row], ...}, tag)`` returns only after its rows are in files that
were fsynced and renamed into place (services.warehouse.append). Rows wait for a commit, which
starts when ``batch_rows`` rows are pending or the oldest pending row has waited
``commit_interval_s``, so a steady stream makes one file per table per interval (not one per
message) and each push waits at most about the interval plus the write. Tables are appended one
at a time and ``on_written(table, tags)`` reports each durable append (in the event loop), so a
caller's idempotency record never runs ahead of (or behind) what is on disk. A table append that
fails is retried writer by writer, so one bad row fails only its own request.

No task runs while nothing is pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from services.warehouse import append

log = logging.getLogger(__name__)

Rows = dict[str, list[dict[str, Any]]]


class _Pending:
    __slots__ = ("at", "future", "rows", "tag")

    def __init__(self, rows: Rows, tag: Any, future: asyncio.Future[None], at: float) -> None:
        self.rows, self.tag, self.future, self.at = rows, tag, future, at


class WarehouseSink:
    def __init__(
        self,
        warehouse_dir: str | os.PathLike[str],
        batch_rows: int = 500,
        commit_interval_s: float = 0.5,
        on_written: Callable[[str, list[Any]], None] | None = None,
    ) -> None:
        self.warehouse_dir = warehouse_dir
        self.on_written = on_written
        self.batch_rows = batch_rows
        self.commit_interval_s = commit_interval_s
        self._pending: list[_Pending] = []
        self._pending_rows = 0
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self.files_written = 0
        self.batches = 0

    def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        self._running = False
        self._full.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._pending:
            await self._flush()

    async def write(self, rows: Rows, tag: Any = None) -> None:
        if not self._running:
            raise RuntimeError("warehouse sink is not running")
        loop = asyncio.get_running_loop()
        item = _Pending(rows, tag, loop.create_future(), loop.time())
        self._pending.append(item)
        self._pending_rows += sum(len(v) for v in rows.values())
        if self._pending_rows >= self.batch_rows:
            self._full.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="warehouse-sink")
        await asyncio.shield(item.future)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending and self._running:
            wait = self._pending[0].at + self.commit_interval_s - loop.time()
            if wait > 0 and self._pending_rows < self.batch_rows:
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), wait)
            if self._pending:
                await self._flush()

    def _take(self) -> list[_Pending]:
        taken: list[_Pending] = []
        count = 0
        while self._pending and (not taken or count < self.batch_rows):
            item = self._pending.pop(0)
            taken.append(item)
            count += sum(len(v) for v in item.rows.values())
        self._pending_rows -= count
        return taken

    async def _flush(self) -> None:
        batch = self._take()
        errors: dict[int, BaseException] = {}
        tables = list(dict.fromkeys(t for item in batch for t, r in item.rows.items() if r))
        for table in tables:
            members = [(i, item) for i, item in enumerate(batch) if item.rows.get(table)]
            try:
                await asyncio.to_thread(self._append, table, [r for _, m in members for r in m.rows[table]])
            except Exception as exc:
                if len(members) == 1:
                    errors[members[0][0]] = exc
                    continue
                for i, m in members:  # find the bad rows: each writer on its own
                    try:
                        await asyncio.to_thread(self._append, table, m.rows[table])
                    except Exception as one:
                        errors[i] = one
                    else:
                        self._written(table, [m])
            else:
                self._written(table, [m for _, m in members])
        self.batches += 1
        for i, item in enumerate(batch):
            if not item.future.done():
                if i in errors:
                    item.future.set_exception(errors[i])
                else:
                    item.future.set_result(None)

    def _written(self, table: str, members: list[_Pending]) -> None:
        if self.on_written is not None:
            self.on_written(table, [m.tag for m in members])

    def _append(self, table: str, rows: list[dict[str, Any]]) -> None:
        self.files_written += len(append(self.warehouse_dir, table, rows))
