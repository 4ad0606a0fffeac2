"""Group commit into the warehouse: concurrent pushes share Parquet files, each waits until durable.

``await sink.write({"cloud_run": [row], ...})`` returns only after its rows are in files that
were fsynced and renamed into place (services.warehouse.append). While one write runs, the rows
of later requests queue up and go together in the next one, so a busy processor writes few,
larger files and an idle one adds no delay. Tables are appended one at a time and
``on_written(table, rows)`` reports each durable append, so a caller's idempotency record never
runs ahead of (or behind) what is on disk. A table append that fails is retried writer by writer,
so one bad row fails only its own request.
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


class WarehouseSink:
    def __init__(
        self,
        warehouse_dir: str | os.PathLike[str],
        max_batch_rows: int = 5000,
        on_written: Callable[[str, list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.warehouse_dir = warehouse_dir
        self.on_written = on_written  # called (in a worker thread) once a table's rows are durable
        self.max_batch_rows = max_batch_rows
        self._pending: list[tuple[Rows, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.files_written = 0
        self.batches = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="warehouse-sink")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._pending:
            await self._flush()

    async def write(self, rows: Rows) -> None:
        if self._task is None:
            raise RuntimeError("warehouse sink is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future))
        self._wakeup.set()
        await asyncio.shield(future)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await self._flush()

    def _take(self) -> list[tuple[Rows, asyncio.Future[None]]]:
        taken, count = [], 0
        while self._pending and (not taken or count < self.max_batch_rows):
            item = self._pending.pop(0)
            taken.append(item)
            count += sum(len(v) for v in item[0].values())
        return taken

    async def _flush(self) -> None:
        batch = self._take()
        errors: dict[int, BaseException] = {}
        tables = list(dict.fromkeys(t for rows, _ in batch for t, r in rows.items() if r))
        for table in tables:
            members = [(i, rows[table]) for i, (rows, _) in enumerate(batch) if rows.get(table)]
            try:
                await asyncio.to_thread(self._append, table, [r for _, rs in members for r in rs])
            except Exception as exc:
                if len(members) == 1:
                    errors[members[0][0]] = exc
                    continue
                for i, rs in members:  # find the bad rows: each writer on its own
                    try:
                        await asyncio.to_thread(self._append, table, rs)
                    except Exception as one:
                        errors[i] = one
        self.batches += 1
        for i, (_, future) in enumerate(batch):
            if not future.done():
                if i in errors:
                    future.set_exception(errors[i])
                else:
                    future.set_result(None)

    def _append(self, table: str, rows: list[dict[str, Any]]) -> None:
        self.files_written += len(append(self.warehouse_dir, table, rows))
        if self.on_written is not None:
            self.on_written(table, rows)
