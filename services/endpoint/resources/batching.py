"""Concurrent ``:predict`` requests to one deployed model scored in one call (server-side batching).

A prebuilt scikit-learn or XGBoost model spends most of a one-row ``predict`` checking its input
(scikit-learn's validation: about 0.5 ms a call, whatever the rows), so requests that arrive while a
call runs are joined into the next: one call for all their rows, each request answered with its own
slice. A request that arrives alone is scored at once (no waiting for company), and a batch that fails
is scored again request by request, so one bad request never fails the others.

Where a call runs: a model whose calls are measured to take under :data:`INLINE_BELOW_S` of CPU is called
on the event loop itself, as endpoint 1's champion is (a worker-thread hop costs more than such a call: the
hand-over, the thread's wake-up and the GIL going back and forth, about 0.5 ms on a busy machine); a
slower one, or one not yet measured, in a worker thread, so a user's slow model never holds up the
other endpoints. Each call's CPU time is measured (its wall time on a loaded machine is mostly waiting
for a core), and a model that turns slow goes back to the thread. Only in-process prebuilt models come
here, whose ``predict`` computes; a model waiting on I/O inside ``predict`` would look quick.

Only small requests (under :data:`BATCHED_BELOW` rows), and only for models that answer each row on
its own (``predict_rows``: rows in, one output per row); others (TensorFlow signatures, custom
containers, MLflow pyfuncs) are called per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from starlette.concurrency import run_in_threadpool

# requests of fewer rows are batched; bigger ones already spread the per-call cost over their rows, and
# go straight to worker threads, where several run at once (numpy releases the GIL)
BATCHED_BELOW = 64
# a model whose calls take under this much CPU (a moving average) is called on the event loop
INLINE_BELOW_S = 0.002
T = TypeVar("T")


class RowModel(Protocol):
    def predict_rows(self, instances: Sequence[Any]) -> Any:
        """One output per instance (an array or list, row-aligned with ``instances``)."""

    def encode(self, out: Any) -> bytes:
        """Some rows' outputs as one encoded JSON array."""

    def predict_json(self, instances: Sequence[Any]) -> bytes: ...


class Batcher:
    """The batching queue of one deployed model (on the event loop: no lock needed)."""

    def __init__(self, model: RowModel, max_rows: int, inline_below_s: float = INLINE_BELOW_S) -> None:
        self.model = model
        self.max_rows = max_rows
        self.inline_below_s = inline_below_s
        self.pending: list[tuple[Sequence[Any], asyncio.Future[bytes]]] = []
        self.running = False
        self.cost_s: float | None = None  # the moving average of one call's duration; None before the first

    @property
    def inline(self) -> bool:
        """Whether the next call runs on the event loop (the model is known to be quick)."""
        return self.cost_s is not None and self.cost_s < self.inline_below_s

    def _timed(self, call: Callable[[Sequence[Any]], T], rows: Sequence[Any]) -> T:
        start = time.thread_time()  # the call's CPU: on a busy machine its wall time is mostly waiting for a core
        try:
            return call(rows)
        finally:
            spent = time.thread_time() - start
            self.cost_s = spent if self.cost_s is None else 0.8 * self.cost_s + 0.2 * spent

    async def _call(self, call: Callable[[Sequence[Any]], T], rows: Sequence[Any]) -> T:
        """``call(rows)`` on the event loop when the model is quick, else in a worker thread; timed."""
        if self.inline:
            return self._timed(call, rows)
        return await run_in_threadpool(self._timed, call, rows)

    async def predict_json(self, instances: Sequence[Any]) -> bytes:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.pending.append((instances, future))
        if not self.running:
            self.running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    def _take(self) -> list[tuple[Sequence[Any], asyncio.Future[bytes]]]:
        """The next batch: waiting requests in order, up to ``max_rows`` rows (at least one request)."""
        batch: list[tuple[Sequence[Any], asyncio.Future[bytes]]] = []
        rows = 0
        while self.pending and (not batch or rows + len(self.pending[0][0]) <= self.max_rows):
            item = self.pending.pop(0)
            batch.append(item)
            rows += len(item[0])
        return batch

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch = self._take()
                if len(batch) == 1:
                    await self._one(*batch[0])
                    continue
                rows = [row for instances, _ in batch for row in instances]
                try:
                    out = await self._call(self.model.predict_rows, rows)
                    if len(out) != len(rows):
                        raise ValueError("not one output per row")
                except Exception:  # a bad request among them (or a model that is not row-wise): one by one
                    for instances, future in batch:
                        await self._one(instances, future)
                    continue
                start = 0
                for instances, future in batch:
                    end = start + len(instances)
                    if not future.done():
                        future.set_result(self.model.encode(out[start:end]))
                    start = end
        finally:
            self.running = False

    async def _one(self, instances: Sequence[Any], future: asyncio.Future[bytes]) -> None:
        try:
            result = await self._call(self.model.predict_json, instances)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)
