"""One run at a time: window -> train -> evaluate -> gate -> register -> promote -> confirm.

Every step is recorded (duration, attempts, inputs, outputs) in the run history and in an MLflow
run. A failing step is retried with exponential backoff, then fails the run; the champion is only
touched by the ``promote`` step, one alias move, after everything else has succeeded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from services.orchestrator import consumers, notify, window
from services.orchestrator.history import RunHistory, now_iso
from services.orchestrator.metrics import OrchestratorMetrics
from services.orchestrator.modelops import ModelOps
from services.orchestrator.params import RunParams
from services.orchestrator.settings import OrchestratorSettings
from services.orchestrator.tracking import Tracker

log = logging.getLogger(__name__)


class StepFailed(RuntimeError):
    def __init__(self, step: str, error: str) -> None:
        super().__init__(f"step {step} failed: {error}")
        self.step = step
        self.error = error


class Stopped(RuntimeError):
    """The orchestrator is shutting down; the run stops before touching the champion."""


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

    def trigger(self, trigger: dict[str, Any], params: dict[str, Any]) -> tuple[dict[str, Any], bool]:
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
            self.history.save(record)
            self.tracker.finish(mlflow_run, record)
            self.metrics.outcomes.labels(record["status"], record.get("decision") or "none").inc()
            if record.get("status") != "succeeded" or record.get("decision") == "promote":
                record["notified"] = notify.notify(self.settings.webhook_url, record)
                self.history.save(record)
            with self._lock:
                self._active = None
                self.metrics.in_progress.set(0)
                self.last_finished = time.monotonic()
            log.info("run %s %s: %s", record["id"], record["status"], record.get("reason"))

    def _step(
        self, record: dict[str, Any], name: str, fn: Callable[[dict[str, Any]], Any], *, retries: int | None = None
    ):
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
                result = fn(entry)
            except Exception as exc:
                entry.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}")
                log.warning("run %s step %s attempt %d failed: %s", record["id"], name, attempt + 1, exc)
                if attempt < retries and not self.stop_event.wait(self.settings.retry_backoff_s * 2**attempt):
                    continue
                entry["status"] = "failed"
                entry["seconds"] = round(time.monotonic() - start, 3)
                self.metrics.step_seconds.labels(name).observe(entry["seconds"])
                self.history.save(record)
                self.tracker.step(record.get("mlflow_run_id"), entry)
                raise StepFailed(name, entry["errors"][-1]) from exc
            entry["status"] = "succeeded"
            entry["seconds"] = round(time.monotonic() - start, 3)
            self.metrics.step_seconds.labels(name).observe(entry["seconds"])
            self.history.save(record)
            self.tracker.step(record.get("mlflow_run_id"), entry)
            return result
        raise AssertionError("unreachable")

    def _run_steps(self, record: dict[str, Any], params: dict[str, Any]) -> None:
        s = self.settings
        data: dict[str, Any] = {}

        def load_window(entry: dict[str, Any]) -> None:
            since = datetime.fromisoformat(params["since"]) if params.get("since") else None
            deadline = time.monotonic() + s.window_wait_s
            while True:  # wait (bounded) for enough rows, e.g. after a drift, for rows of the new normal
                frame = window.training_window(
                    s.warehouse_dir, minutes=params["window_minutes"], max_rows=params["max_rows"], since=since
                )
                enough = round(len(frame) * (1 - params["holdout_fraction"])) >= s.min_rows
                if enough or time.monotonic() >= deadline or self.stop_event.wait(1.0):
                    break
            train, holdout = window.split_holdout(frame, params["holdout_fraction"])
            entry["inputs"] = {
                "window_minutes": params["window_minutes"],
                "since": params.get("since"),
                "max_rows": params["max_rows"],
                "rows": len(frame),
                "train_rows": len(train),
                "holdout_rows": len(holdout),
                "holdout_anomalies": int(holdout["anomaly"].sum()) if len(holdout) else 0,
                "window_start": str(frame["event_datetime"].min()) if len(frame) else None,
                "window_end": str(frame["event_datetime"].max()) if len(frame) else None,
                # the gate compares on the newest rows: for a drift run, rows of the new normal
                "holdout_start": str(holdout["event_datetime"].min()) if len(holdout) else None,
            }
            if len(train) < s.min_rows:
                raise ValueError(
                    f"training window has {len(train)} purchases, fewer than HYP_ORCH_MIN_ROWS={s.min_rows}"
                )
            if not 0 < entry["inputs"]["holdout_anomalies"] < len(holdout):
                raise ValueError("held-out set needs both labelled anomalies and normal purchases")
            data.update(train=train, holdout=holdout, window=entry["inputs"])

        def train(entry: dict[str, Any]) -> None:
            trained, seconds = {}, {}
            for candidate in params["candidates"]:
                t0 = time.monotonic()
                trained[candidate] = self.ops.train(candidate, data["train"])
                seconds[candidate] = round(time.monotonic() - t0, 3)
            entry["outputs"] = {"train_seconds": seconds}
            data["trained"] = trained

        def evaluate(entry: dict[str, Any]) -> None:
            scores = {c: self.ops.evaluate(m, data["holdout"]) for c, m in data["trained"].items()}
            champion = self.ops.champion_version()
            record["champion_before"] = champion
            champion_metrics = self.ops.evaluate_version(champion, data["holdout"]) if champion else None
            best = max(scores, key=lambda c: self.ops.rank(scores[c]))
            entry["outputs"] = {"candidates": scores, "champion": champion_metrics, "best": best}
            self.tracker.metrics(record.get("mlflow_run_id"), scores, champion_metrics)
            data.update(scores=scores, champion=champion, champion_metrics=champion_metrics, best=best)

        def gate(entry: dict[str, Any]) -> None:
            promote, reason = self.ops.gate(data["scores"][data["best"]], data["champion_metrics"])
            if promote and not params.get("promote", True):
                promote, reason = False, f"{reason}; not promoted: the run was asked not to promote"
            record["decision"] = "promote" if promote else "keep"
            record["reason"] = f"{data['best']}: {reason}"
            entry["outputs"] = {"decision": record["decision"], "reason": record["reason"]}

        def register(entry: dict[str, Any]) -> None:
            best = data["best"]
            tags = {
                "hyp.window_start": data["window"]["window_start"],
                "hyp.window_end": data["window"]["window_end"],
                "hyp.orchestrator_run": record["id"],
                "hyp.candidate": best,
            }
            if "version" not in data:  # a retry must not register twice
                data["version"] = self.ops.register(data["trained"][best], data["holdout"], tags)
            entry["outputs"] = {"version": data["version"]}

        def promote(entry: dict[str, Any]) -> None:
            if self.stop_event.is_set():
                raise Stopped("stopped before promotion")
            current = self.ops.champion_version()
            if current != data["champion"]:
                raise ValueError(
                    f"@champion moved from {data['champion']} to {current} during the run; not overriding it"
                )
            self.ops.promote(data["version"])  # the one alias move
            record["promoted_version"] = data["version"]
            record["promoted_at"] = now_iso()
            entry["outputs"] = {"from": data["champion"], "to": data["version"]}
            self.metrics.champion.set(float(data["version"]))

        def confirm(entry: dict[str, Any]) -> None:
            want = str(record["promoted_version"])
            results: dict[str, Any] = {}
            endpoint_url, metrics_url = s.endpoint_url, s.detector_metrics_url
            probes: dict[str, Callable[[], str | None] | None] = {
                "endpoint": (
                    (lambda: consumers.endpoint_version(endpoint_url, self.endpoint_name())) if endpoint_url else None
                ),
                "detector": (lambda: consumers.detector_version(metrics_url)) if metrics_url else None,
            }
            for name, probe in probes.items():
                if probe is None:
                    env = "HYP_ORCH_ENDPOINT_URL" if name == "endpoint" else "HYP_ORCH_DETECTOR_METRICS_URL"
                    results[name] = {"status": "skipped", "reason": f"{env} is not set"}
                else:
                    results[name] = consumers.wait_for_version(probe, want, timeout_s=s.confirm_timeout_s)
            record["consumers"] = results
            entry["outputs"] = results
            late = [n for n, r in results.items() if r["status"] not in ("confirmed", "skipped")]
            if late:
                raise ValueError(f"{', '.join(late)} did not report version {want} within {s.confirm_timeout_s:g} s")

        self._step(record, "window", load_window)
        self._step(record, "train", train)
        self._step(record, "evaluate", evaluate)
        self._step(record, "gate", gate, retries=0)
        if record["decision"] != "promote":
            return
        self._step(record, "register", register)
        self._step(record, "promote", promote, retries=0)
        self._step(record, "confirm", confirm, retries=0)

    def resolve(self, params: RunParams) -> dict[str, Any]:
        """A run's parameters with the settings' defaults; ValueError naming the field when unknown."""
        return params.resolved(self.settings, self.ops.candidates())

    def default_params(self) -> dict[str, Any]:
        return self.resolve(RunParams())

    def endpoint_name(self) -> str:
        s = self.settings
        return f"projects/{s.project}/locations/{s.location}/endpoints/{s.endpoint_id}"


def utcnow() -> datetime:
    return datetime.now(UTC)
