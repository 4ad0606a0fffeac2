"""The steps of a run, each a function with typed input and a typed result: window -> train -> evaluate ->
gate -> register -> promote -> confirm.

A step knows nothing of retries, timing, the run history or MLflow: the runner (runner.py) calls it,
records its result and retries it. A result says what it adds to the step's history entry
(:meth:`Result.entry`) and to the run record (:meth:`Result.record`); a result with a ``problem``
fails its step after what the step saw has been recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from os import PathLike
from typing import Any

import pandas as pd

from services.orchestrator import consumers, window
from services.orchestrator.history import now_iso
from services.orchestrator.modelops import ModelOps
from services.orchestrator.params import ResolvedParams

Probe = Callable[[], str | None]  # the model version a consumer reports now


class Stopped(RuntimeError):
    """The orchestrator is shutting down; the run stops before touching the champion."""


class Result:
    """What every step returns; ``problem`` (when set) fails the step after it has been recorded."""

    problem: str | None = None

    def entry(self) -> dict[str, Any]:
        """Keys added to the step's entry in the run history (``inputs``, ``outputs``)."""
        return {}

    def record(self) -> dict[str, Any]:
        """Keys set on the run record itself."""
        return {}


# ---- window ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window(Result):
    train: pd.DataFrame
    holdout: pd.DataFrame
    summary: dict[str, Any]  # what the window held: recorded as the step's inputs
    problem: str | None = None

    def entry(self) -> dict[str, Any]:
        return {"inputs": self.summary}


def load_window(
    warehouse_dir: str | PathLike[str],
    params: ResolvedParams,
    *,
    min_rows: int,
    wait_s: float = 0.0,
    stop: threading.Event | None = None,
    table: str = "cloud_run",
) -> Window:
    """The run's purchases from the warehouse, split by time into training rows and the newest held out.

    Waits (up to ``wait_s``, polling each second) for ``min_rows`` training rows, e.g. after a drift,
    for rows of the new normal; too few rows, or a held-out set without both labels, is a problem.
    """
    stop = stop or threading.Event()
    since = datetime.fromisoformat(params["since"]) if params["since"] else None
    deadline = time.monotonic() + wait_s
    while True:
        frame = window.training_window(
            warehouse_dir, minutes=params["window_minutes"], max_rows=params["max_rows"], since=since, table=table
        )
        enough = round(len(frame) * (1 - params["holdout_fraction"])) >= min_rows
        if enough or time.monotonic() >= deadline or stop.wait(1.0):
            break
    train, holdout = window.split_holdout(frame, params["holdout_fraction"])
    anomalies = int(holdout["anomaly"].sum()) if len(holdout) else 0
    summary: dict[str, Any] = {
        "window_minutes": params["window_minutes"],
        "since": params["since"],
        "max_rows": params["max_rows"],
        "rows": len(frame),
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "holdout_anomalies": anomalies,
        "window_start": str(frame["event_datetime"].min()) if len(frame) else None,
        "window_end": str(frame["event_datetime"].max()) if len(frame) else None,
        # the gate compares on the newest rows: for a drift run, rows of the new normal
        "holdout_start": str(holdout["event_datetime"].min()) if len(holdout) else None,
    }
    problem = None
    if len(train) < min_rows:
        problem = f"training window has {len(train)} purchases, fewer than HYP_ORCH_MIN_ROWS={min_rows}"
    elif not 0 < anomalies < len(holdout):
        problem = "held-out set needs both labelled anomalies and normal purchases"
    return Window(train, holdout, summary, problem)


# ---- train, evaluate, gate ------------------------------------------------------------------------
@dataclass(frozen=True)
class Trained(Result):
    models: dict[str, Any]  # candidate kind -> its trained model
    seconds: dict[str, float]

    def entry(self) -> dict[str, Any]:
        return {"outputs": {"train_seconds": self.seconds}}


def train(ops: ModelOps, candidates: Sequence[str], frame: pd.DataFrame) -> Trained:
    models: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for candidate in candidates:
        t0 = time.monotonic()
        models[candidate] = ops.train(candidate, frame)
        seconds[candidate] = round(time.monotonic() - t0, 3)
    return Trained(models, seconds)


@dataclass(frozen=True)
class Evaluation(Result):
    scores: dict[str, dict[str, float]]  # candidate -> its metrics on the held-out rows
    champion: str | None  # the @champion version when the run evaluated
    champion_metrics: dict[str, float] | None
    best: str

    def entry(self) -> dict[str, Any]:
        return {"outputs": {"candidates": self.scores, "champion": self.champion_metrics, "best": self.best}}

    def record(self) -> dict[str, Any]:
        return {"champion_before": self.champion}


def evaluate(ops: ModelOps, models: dict[str, Any], holdout: pd.DataFrame) -> Evaluation:
    """Every candidate and the champion on the same held-out rows; the best candidate by the gate's metric."""
    scores = {c: ops.evaluate(m, holdout) for c, m in models.items()}
    champion = ops.champion_version()
    champion_metrics = ops.evaluate_version(champion, holdout) if champion else None
    best = max(scores, key=lambda c: ops.rank(scores[c]))
    return Evaluation(scores, champion, champion_metrics, best)


@dataclass(frozen=True)
class Decision(Result):
    promote: bool
    reason: str

    @property
    def label(self) -> str:
        return "promote" if self.promote else "keep"

    def entry(self) -> dict[str, Any]:
        return {"outputs": {"decision": self.label, "reason": self.reason}}

    def record(self) -> dict[str, Any]:
        return {"decision": self.label, "reason": self.reason}


def gate(ops: ModelOps, evaluation: Evaluation, *, allow_promote: bool = True) -> Decision:
    """The best candidate against the champion; a run asked not to promote keeps the champion, saying so."""
    promote, reason = ops.gate(evaluation.scores[evaluation.best], evaluation.champion_metrics)
    if promote and not allow_promote:
        promote, reason = False, f"{reason}; not promoted: the run was asked not to promote"
    return Decision(promote, f"{evaluation.best}: {reason}")


# ---- register, promote, confirm -------------------------------------------------------------------
@dataclass(frozen=True)
class Registered(Result):
    version: str

    def entry(self) -> dict[str, Any]:
        return {"outputs": {"version": self.version}}


def version_tags(summary: dict[str, Any], run_id: str, candidate: str) -> dict[str, Any]:
    """Tags of a registered version: its training window (the drift sensor's reference) and its run."""
    return {
        "hyp.window_start": summary["window_start"],
        "hyp.window_end": summary["window_end"],
        "hyp.orchestrator_run": run_id,
        "hyp.candidate": candidate,
    }


def register(ops: ModelOps, model: Any, holdout: pd.DataFrame, tags: dict[str, Any]) -> Registered:
    """A new registry version of the winner; no alias moves."""
    return Registered(ops.register(model, holdout, tags))


@dataclass(frozen=True)
class Promotion(Result):
    previous: str | None
    version: str
    at: str = field(default_factory=now_iso)

    def entry(self) -> dict[str, Any]:
        return {"outputs": {"from": self.previous, "to": self.version}}

    def record(self) -> dict[str, Any]:
        return {"promoted_version": self.version, "promoted_at": self.at}


def promote(ops: ModelOps, version: str, *, expected: str | None, stop: threading.Event | None = None) -> Promotion:
    """The one alias move, only while the champion is still the one the run compared against."""
    if stop is not None and stop.is_set():
        raise Stopped("stopped before promotion")
    current = ops.champion_version()
    if current != expected:
        raise ValueError(f"@champion moved from {expected} to {current} during the run; not overriding it")
    ops.promote(version)
    return Promotion(expected, version)


@dataclass(frozen=True)
class Consumer:
    """A service that must follow a promotion: how to ask it its version, or the setting that is unset."""

    name: str
    probe: Probe | None
    unset: str  # the environment variable that would configure the probe


@dataclass(frozen=True)
class Confirmation(Result):
    results: dict[str, dict[str, Any]]  # consumer -> status (confirmed, timeout, skipped), version, seconds
    problem: str | None = None

    def entry(self) -> dict[str, Any]:
        return {"outputs": self.results}

    def record(self) -> dict[str, Any]:
        return {"consumers": self.results}


def consumer_probes(endpoint_url: str | None, endpoint_name: str, detector_metrics_url: str | None) -> list[Consumer]:
    """The endpoint (its Endpoint resource's deployed version) and the detector (the Prometheus page of each of
    its workers, ``detector_metrics_url`` comma-separated: all must report the version)."""
    endpoint = partial(consumers.endpoint_version, endpoint_url, endpoint_name) if endpoint_url else None
    workers = consumers.split_urls(detector_metrics_url)  # every worker's page (--detector-workers N)
    detector = partial(consumers.detector_versions, workers) if workers else None
    return [
        Consumer("endpoint", endpoint, "HYP_ORCH_ENDPOINT_URL"),
        Consumer("detector", detector, "HYP_ORCH_DETECTOR_METRICS_URL"),
    ]


def confirm(serving: Sequence[Consumer], want: str, *, timeout_s: float) -> Confirmation:
    """Wait (each up to ``timeout_s``) for every configured consumer to report version ``want``."""
    results: dict[str, dict[str, Any]] = {}
    for consumer in serving:
        if consumer.probe is None:
            results[consumer.name] = {"status": "skipped", "reason": f"{consumer.unset} is not set"}
        else:
            results[consumer.name] = consumers.wait_for_version(consumer.probe, want, timeout_s=timeout_s)
    late = [n for n, r in results.items() if r["status"] not in ("confirmed", "skipped")]
    problem = f"{', '.join(late)} did not report version {want} within {timeout_s:g} s" if late else None
    return Confirmation(results, problem)
