"""A CREATE MODEL's progress as BigQuery reports it in the job resource: ``statistics.query.mlStatistics``
(``modelType``, ``trainingType``, ``maxIterations``, ``iterationResults`` with ``index``, ``durationMs``,
``trainingLoss``), plus this engine's stage (``READING`` the training query, ``TRAINING``, ``SAVING``,
``DONE``) and the rows read, for a progress bar.

The job that runs a statement opens :func:`job` around it (services/bigquery/jobs.py) and reads
:meth:`Progress.statistics` whenever the job is fetched, from another thread while it runs; CREATE MODEL
(statements.py) reports through :func:`current`, a no-op outside a job.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

STAGES = ("READING", "TRAINING", "SAVING", "DONE")


@dataclass
class Progress:
    stage: str | None = None
    rows: int | None = None
    model_type: str | None = None
    max_iterations: int | None = None
    iterations: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, **changes: Any) -> None:
        with self.lock:
            for key, value in changes.items():
                setattr(self, key, value)

    def iteration(self, entry: dict[str, Any]) -> None:
        """One training iteration ended (``{"iteration", "loss", "duration_ms"}``, models/kmeans.py's callback)."""
        with self.lock:
            self.iterations = [*self.iterations, dict(entry)]

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


@contextmanager
def job() -> Iterator[Progress]:
    """The progress of the statement run inside this block (one per job); inside another such block (a caller
    that watches the job itself, as `hyp sql` does), that block's progress."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    progress = Progress()
    token = _current.set(progress)
    try:
        yield progress
    finally:
        _current.reset(token)


def current() -> Progress:
    """The running job's progress; outside a job, a throwaway one."""
    return _current.get() or Progress()
