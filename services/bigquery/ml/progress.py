"""A CREATE MODEL's progress as BigQuery reports it in the job resource: ``statistics.query.mlStatistics``
(``modelType``, ``trainingType``, ``maxIterations``, ``iterationResults`` with ``index``, ``durationMs``,
``trainingLoss``), plus this engine's stage (``READING`` the training query, ``TRAINING``, ``SAVING``,
``DONE``) and the rows read, for a progress bar.

The job that runs a statement opens :func:`job` around it (services/bigquery/jobs.py) and reads
:meth:`Progress.statistics` whenever the job is fetched, from another thread while it runs; CREATE MODEL
(statements.py) reports through :func:`current`, a no-op outside a job.

Cancellation (jobs.cancel): :func:`cancel` marks a running job's progress, or a job not started yet (its
progress starts marked when :func:`job` opens it with the job's key). Every report of the statement (a stage,
an iteration or epoch) checks the mark and raises :class:`Cancelled`: the job ends DONE with errorResult reason
``stopped``, as BigQuery ends a cancelled job; the model is saved (and registered) only after the last check,
so a cancelled CREATE MODEL leaves no model and registers nothing. A cancel that comes after that check is too
late: the job ends as if none came (BigQuery's cancel is best effort too).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from services.bigquery.errors import BigQueryError

STAGES = ("READING", "TRAINING", "SAVING", "DONE")
# BigQuery's errorResult of a cancelled job (reason ``stopped``; Google's client then says job.cancelled())
CANCELLED_MESSAGE = "Job execution was cancelled: User requested cancellation"


class Cancelled(BigQueryError):
    """A cancelled job's error: reason ``stopped`` (BigQuery answers it with HTTP 200 in the job's status)."""

    def __init__(self) -> None:
        super().__init__(200, "stopped", CANCELLED_MESSAGE)


@dataclass
class Progress:
    stage: str | None = None
    rows: int | None = None
    model_type: str | None = None
    max_iterations: int | None = None
    iterations: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)

    def update(self, *, check: bool = True, **changes: Any) -> None:
        """Report a stage (and the rows read ...); :class:`Cancelled` once the job was cancelled, unless ``check``
        is False (the report that the model was saved: too late to cancel)."""
        if check:
            self.check()
        with self.lock:
            for key, value in changes.items():
                setattr(self, key, value)

    def iteration(self, entry: dict[str, Any]) -> None:
        """One training iteration or epoch ended (``{"iteration", "loss", "duration_ms"}``: models/kmeans.py's
        callback, the autoencoder's epochs); :class:`Cancelled` once the job was cancelled (the trainer stops)."""
        with self.lock:
            self.iterations = [*self.iterations, dict(entry)]
        self.check()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()

    def statistics(self) -> dict[str, Any]:
        """``{"mlStatistics": ...}`` for ``statistics.query`` (empty before a CREATE MODEL reported anything)."""
        with self.lock:
            if self.stage is None:
                return {}
            ml: dict[str, Any] = {"trainingType": "SINGLE_TRAINING", "iterationResults": [
                {"index": int(it["iteration"]), "durationMs": str(round(it["duration_ms"])),
                 "trainingLoss": float(it["loss"])}
                for it in self.iterations
            ]}  # fmt: skip
            if self.model_type is not None:
                ml["modelType"] = self.model_type
            if self.max_iterations is not None:
                ml["maxIterations"] = str(self.max_iterations)
            local = {"stage": self.stage, **({"rows": str(self.rows)} if self.rows is not None else {})}
            return {"mlStatistics": ml, "hypProgress": local}

    def fraction(self) -> float:
        """0..1 for a progress bar: the stage, and within TRAINING the iterations done of maxIterations."""
        with self.lock:
            if self.stage is None:
                return 0.0
            done = STAGES.index(self.stage) / (len(STAGES) - 1)
            if self.stage == "TRAINING" and self.max_iterations:
                done += min(len(self.iterations) / self.max_iterations, 1.0) / (len(STAGES) - 1)
            return min(done, 1.0)


_current: ContextVar[Progress | None] = ContextVar("bqml_progress", default=None)
Key = tuple[str, str]  # (project, job id)
_running: dict[Key, Progress] = {}  # the progress of each job inside job(key), for cancel
_requested: set[Key] = set()  # jobs cancelled before job(key) opened (waiting for a worker)
_registry_lock = threading.Lock()
MAX_REQUESTED = 1000  # cancels of jobs never started are forgotten past this many


@contextmanager
def job(key: Key | None = None) -> Iterator[Progress]:
    """The progress of the statement run inside this block (one per job); inside another such block (a caller
    that watches the job itself, as `hyp sql` does), that block's progress. With ``key`` (project, job id)
    :func:`cancel` reaches it, and a cancel that came before the block opened marks it at once."""
    outer = _current.get()
    progress = outer if outer is not None else Progress()
    if key is not None:
        with _registry_lock:
            _running[key] = progress
            if key in _requested:
                _requested.discard(key)
                progress.cancelled.set()
    token = _current.set(progress) if outer is None else None
    try:
        yield progress
    finally:
        if token is not None:
            _current.reset(token)
        if key is not None:
            with _registry_lock:
                _running.pop(key, None)


def cancel(project: str, job_id: str) -> bool:
    """jobs.cancel of a job that is not done: a running statement stops at its next report (stage, iteration,
    epoch) with :class:`Cancelled`; one still waiting for a worker stops as soon as it starts. True when the job
    was running here (False: not started yet, or not a job this module sees; the cancel is kept for it)."""
    key = (project, job_id)
    with _registry_lock:
        running = _running.get(key)
        if running is None:
            _requested.add(key)
            while len(_requested) > MAX_REQUESTED:
                _requested.pop()
            return False
    running.cancelled.set()
    return True


def current() -> Progress:
    """The running job's progress; outside a job, a throwaway one."""
    return _current.get() or Progress()
