"""One run at a time: window -> train -> evaluate -> gate -> register -> promote -> confirm (steps.py).

Every step is recorded (duration, attempts, inputs, outputs) in the run history and in an MLflow
run. A failing step is retried with exponential backoff, then fails the run; the champion is only
touched by the ``promote`` step, one alias move, after everything else has succeeded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from services.common import names
from services.orchestrator import notify, steps
from services.orchestrator.history import RunHistory, now_iso
from services.orchestrator.metrics import OrchestratorMetrics
from services.orchestrator.modelops import ModelOps
from services.orchestrator.params import ResolvedParams, RunParams
from services.orchestrator.settings import OrchestratorSettings
from services.orchestrator.steps import Stopped
from services.orchestrator.tracking import Tracker

__all__ = ["Orchestrator", "StepFailed", "Stopped"]

R = TypeVar("R", bound=steps.Result)

log = logging.getLogger(__name__)


class StepFailed(RuntimeError):
    def __init__(self, step: str, error: str) -> None:
        super().__init__(f"step {step} failed: {error}")
        self.step = step
        self.error = error


class Orchestrator:
    def __init__(
        self,
        settings: OrchestratorSettings,
        ops: ModelOps,
        *,
        history: RunHistory | None = None,
        metrics: OrchestratorMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.ops = ops
        self.history = history or RunHistory(settings.history_path)
        self.metrics = metrics or OrchestratorMetrics()
        self.tracker = Tracker(settings.mlflow_tracking_uri, settings.experiment)
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._active: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self.last_finished: float | None = None  # monotonic time the last run ended
        self.interrupted_on_start = self.history.mark_interrupted()

    # ---- triggering -------------------------------------------------------------------------
    @property
    def active(self) -> dict[str, Any] | None:
        return self._active

    def trigger(self, trigger: dict[str, Any], params: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Start a run, or join the one in progress; return (run record, whether it is new)."""
        with self._lock:
            if self._active is not None:
                self.metrics.coalesced.labels(trigger.get("kind", "?")).inc()
                self._active.setdefault("coalesced_triggers", []).append({**trigger, "at": now_iso()})
                self.history.save(self._active)
                return self._active, False
            record = self.history.create(trigger, params)
            self._active = record
            self.metrics.runs.labels(trigger.get("kind", "?")).inc()
            self.metrics.in_progress.set(1)
            self._thread = threading.Thread(target=self._execute, args=(record,), name=f"run-{record['id']}")
            self._thread.start()
            return record, True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run in progress to end; return True when none is left."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.wait(timeout)

    # ---- one run ----------------------------------------------------------------------------
    def _execute(self, record: dict[str, Any]) -> None:
        params = record["params"]
        mlflow_run = None
        try:
            mlflow_run = self.tracker.start(record)
            record["mlflow_run_id"] = mlflow_run
            self._run_steps(record, params)
            record["status"] = "succeeded" if record.get("status") == "running" else record["status"]
        except Stopped as exc:
            record["status"] = "interrupted"
            record["reason"] = f"{exc}; the champion was not changed"
        except StepFailed as exc:
            record["status"] = "failed"
            moved = record.get("promoted_version")
            record["reason"] = str(exc) + ("" if moved else "; the champion was not changed")
        except Exception as exc:  # a bug must not leave the run 'running' forever
            log.exception("run %s crashed", record["id"])
            record["status"] = "failed"
            record["reason"] = f"unexpected error: {type(exc).__name__}: {exc}"
        finally:
            record["finished_at"] = now_iso()
            self.metrics.outcomes.labels(record["status"], record.get("decision") or "none").inc()
            try:
                self.history.save(record)
                self.tracker.finish(mlflow_run, record)
                if record.get("status") != "succeeded" or record.get("decision") == "promote":
                    record["notified"] = notify.notify(self.settings.webhook_url, record)
                    self.history.save(record)
            except Exception as exc:  # a full disk: the end goes unrecorded (a restart marks the run interrupted)
                log.error("run %s: its end could not be recorded: %s: %s", record["id"], type(exc).__name__, exc)
            finally:  # whatever happened, the orchestrator takes the next run
                with self._lock:
                    self._active = None
                    self.metrics.in_progress.set(0)
                    self.last_finished = time.monotonic()
            log.info("run %s %s: %s", record["id"], record["status"], record.get("reason"))

    def _step(self, record: dict[str, Any], name: str, run: Callable[[], R], *, retries: int | None = None) -> R:
        """Run one step: record it in the history (entry, the run record's fields, its duration) and in
        MLflow; retry a failing attempt with exponential backoff, then fail the run with StepFailed."""
        if self.stop_event.is_set():
            raise Stopped(f"stopped before step {name}")
        retries = self.settings.step_retries if retries is None else retries
        entry: dict[str, Any] = {"name": name, "status": "running", "started_at": now_iso(), "attempts": 0}
        record["steps"].append(entry)
        self.history.save(record)
        start = time.monotonic()
        for attempt in range(retries + 1):
            entry["attempts"] = attempt + 1
            try:
                result = run()
                entry.update(result.entry())
                record.update(result.record())
                if result.problem:
                    raise ValueError(result.problem)
            except Exception as exc:
                entry.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}")
                log.warning("run %s step %s attempt %d failed: %s", record["id"], name, attempt + 1, exc)
                if attempt < retries and not self.stop_event.wait(self.settings.retry_backoff_s * 2**attempt):
                    continue
                self._finish_step(record, entry, "failed", start)
                raise StepFailed(name, entry["errors"][-1]) from exc
            self._finish_step(record, entry, "succeeded", start)
            return result
        raise AssertionError("unreachable")

    def _finish_step(self, record: dict[str, Any], entry: dict[str, Any], status: str, start: float) -> None:
        entry["status"] = status
        entry["seconds"] = round(time.monotonic() - start, 3)
        self.metrics.step_seconds.labels(entry["name"]).observe(entry["seconds"])
        self.history.save(record)
        self.tracker.step(record.get("mlflow_run_id"), entry)

    def _run_steps(self, record: dict[str, Any], params: ResolvedParams) -> None:
        """The steps in order; the champion is only touched by ``promote``, after every other step succeeded."""
        s, ops, stop = self.settings, self.ops, self.stop_event
        win = self._step(
            record,
            "window",
            lambda: steps.load_window(
                s.warehouse_dir, params, min_rows=s.min_rows, wait_s=s.window_wait_s, stop=stop, table=s.events_table
            ),
        )
        trained = self._step(record, "train", lambda: steps.train(ops, params["candidates"], win.train))
        scored = self._step(record, "evaluate", lambda: steps.evaluate(ops, trained.models, win.holdout))
        self.tracker.metrics(record.get("mlflow_run_id"), scored.scores, scored.champion_metrics)
        allow = params.get("promote", True)
        decision = self._step(record, "gate", lambda: steps.gate(ops, scored, allow_promote=allow), retries=0)
        if not decision.promote:
            return
        tags = steps.version_tags(win.summary, record["id"], scored.best)
        model = trained.models[scored.best]
        registered = self._step(record, "register", lambda: steps.register(ops, model, win.holdout, tags))
        version = registered.version
        previous = scored.champion
        self._step(record, "promote", lambda: steps.promote(ops, version, expected=previous, stop=stop), retries=0)
        self.metrics.champion.set(float(version))
        serving = steps.consumer_probes(s.endpoint_url, self.endpoint_name(), s.detector_metrics_url)
        self._step(record, "confirm", lambda: steps.confirm(serving, version, timeout_s=s.confirm_timeout_s), retries=0)

    def resolve(self, params: RunParams) -> ResolvedParams:
        """A run's parameters with the settings' defaults; ValueError naming the field when unknown."""
        return params.resolved(self.settings, self.ops.candidates())

    def default_params(self) -> ResolvedParams:
        return self.resolve(RunParams())

    def endpoint_name(self) -> str:
        s = self.settings
        return names.endpoint(s.project, s.location, s.endpoint_id)


def utcnow() -> datetime:
    return datetime.now(UTC)
