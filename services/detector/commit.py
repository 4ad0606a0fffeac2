"""Group the warehouse rows of consecutive batches into one commit, then acknowledge their messages.

The load step publishes a batch's detections at once (that is the latency that matters) and hands the
batch to the process's :class:`Committer`. A background thread commits the pending batches, both
warehouse files of all of them, when they hold ``max_rows`` messages or the oldest has waited
``interval_s``, and only then acknowledges their messages. Until then the subscription's lease
thread keeps extending their ack deadlines, so a crash before the commit means redelivery
(at-least-once), never loss. Pending messages count against the read's ``max_outstanding``, so the
read stops pulling when commits fall behind. :func:`close_all` (the end of ``hyp detector``,
SIGTERM included) commits what is pending and acknowledges it before the process exits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.detector import metrics
from services.detector.batch import Batch

log = logging.getLogger(__name__)

BACKLOG_FACTOR = 4  # add() waits while more than this many max_rows are pending (a stuck disk)


@dataclass(frozen=True)
class CommitConfig:
    """What identifies one committer; hashable, so the pickled DoFns of every bundle find the same one."""

    warehouse_dir: str
    max_rows: int = 10_000
    interval_s: float = 1.0
    journal_key: str = ""  # the worker's commit journal (journal.py); "": none (rows may repeat after a crash)


WriteFn = Callable[[str, list[Batch]], list[Batch]]  # (warehouse_dir, batches) -> batches as written
AckFn = Callable[[list[str]], None]


class Committer:
    """Pending batches and the thread that commits them (see the module docstring)."""

    def __init__(
        self,
        config: CommitConfig,
        write: WriteFn,
        acknowledge: AckFn | None,
        release: AckFn | None = None,
        after_write: Callable[[Batch, Batch], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self._on_close = on_close
        self._write, self._ack, self._release, self._after_write = write, acknowledge, release, after_write
        self._cond = threading.Condition()
        self._pending: list[Batch] = []
        self._rows = 0
        self._oldest = 0.0  # monotonic time the oldest pending batch arrived
        self._busy = False  # a commit is being written
        self._flush = False
        self._closing = False
        self.commits = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._loop, name="hyp-detector-commit", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Messages handed over and not yet committed (acknowledged)."""
        with self._cond:
            return self._rows

    def add(self, batch: Batch) -> None:
        """Queue a batch for the next commit (returns at once unless commits are far behind)."""
        with self._cond:
            while self._rows > BACKLOG_FACTOR * self.config.max_rows and not self._closing:
                self._cond.wait(1.0)
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append(batch)
            self._rows += len(batch)
            metrics.get_metrics().commit_pending.set(self._rows)
            if self._rows >= self.config.max_rows:
                self._cond.notify_all()
            elif len(self._pending) == 1:
                self._cond.notify_all()  # the thread sleeps without a deadline while nothing is pending

    def flush(self, timeout: float | None = None) -> bool:
        """Commit what is pending now and wait until it is done; False if the timeout passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush = True
            self._cond.notify_all()
            while self._pending or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            self._flush = False
        return True

    def close(self, timeout: float | None = 60.0) -> bool:
        """Flush, then stop the thread."""
        done = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=5.0)
        if self._on_close is not None and not self._thread.is_alive():
            self._on_close()
        return done

    def _due(self) -> bool:
        return (
            self._flush
            or self._closing
            or self._rows >= self.config.max_rows
            or time.monotonic() - self._oldest >= self.config.interval_s
        )

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._pending and self._due()):
                    if self._closing and not self._pending:
                        return
                    if self._pending:
                        self._cond.wait(max(0.0, self._oldest + self.config.interval_s - time.monotonic()))
                    else:
                        self._cond.wait()  # idle: nothing to wake up for
                batches, self._pending, self._rows = self._pending, [], 0
                self._busy = True
            try:
                self._commit(batches)
            finally:
                with self._cond:
                    self._busy = False
                    metrics.get_metrics().commit_pending.set(self._rows)
                    self._cond.notify_all()

    def _commit(self, batches: list[Batch]) -> None:
        ids = [ack_id for b in batches for ack_id in b.ack_ids]
        try:
            written = self._write(self.config.warehouse_dir, batches)
        except Exception:  # disk full, permissions, ...: give the messages back for redelivery
            self.failures += 1
            metrics.get_metrics().commit_failures.inc()
            log.exception("warehouse commit of %d messages failed; they will be redelivered", len(ids))
            if self._release is not None:
                self._release(ids)
            return
        if self._after_write is not None:
            for before, after in zip(batches, written, strict=True):
                self._after_write(before, after)
        if ids and self._ack is not None:
            self._ack(ids)
        self.commits += 1
        m = metrics.get_metrics()
        m.commits.inc()
        for batch in written:
            m.observe_batch(batch)


_COMMITTERS: dict[CommitConfig, Committer] = {}
_LOCK = threading.Lock()


def committer_for(config: CommitConfig, make: Callable[[], Committer]) -> Committer:
    """The process's one committer for this config (made by ``make`` the first time)."""
    with _LOCK:
        committer = _COMMITTERS.get(config)
        if committer is None:
            committer = _COMMITTERS[config] = make()
        return committer


def close_all(timeout: float | None = 60.0) -> bool:
    """Commit and acknowledge everything pending, stop every committer; False if one timed out."""
    with _LOCK:
        committers = list(_COMMITTERS.values())
        _COMMITTERS.clear()
    return all([c.close(timeout) for c in committers])
