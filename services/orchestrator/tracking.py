"""Each orchestrator run as an MLflow run: trigger and parameters as params, steps as metrics, the decision as tags.

Tracking is best effort after the run has started: a tracking error is logged, never fails the run
(the run history keeps the same record).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


class Tracker:
    def __init__(self, tracking_uri: str, experiment: str) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self._client: MlflowClient | None = None

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(self.experiment)
        except Exception:  # created meanwhile by another process
            again = self.client.get_experiment_by_name(self.experiment)
            if again is None:
                raise
            return again.experiment_id

    def start(self, record: dict[str, Any]) -> str | None:
        try:
            run = self.client.create_run(
                self._experiment_id(),
                run_name=f"orchestrator-{record['id']}",
                tags={
                    "hyp.component": "orchestrator",
                    "hyp.orchestrator_run": record["id"],
                    "hyp.trigger": record["trigger"].get("kind", "?"),
                    "hyp.trigger_detail": json.dumps(record["trigger"], default=str)[:5000],
                },
            )
            run_id: str = run.info.run_id
            for key, value in record["params"].items():
                self.client.log_param(run_id, key, json.dumps(value) if isinstance(value, list) else str(value))
            return run_id
        except Exception as exc:
            log.warning("MLflow tracking unavailable for run %s: %s", record["id"], exc)
            return None

    def step(self, run_id: str | None, entry: dict[str, Any]) -> None:
        if not run_id:
            return
        try:
            name = entry["name"]
            self.client.log_metric(run_id, f"step.{name}.seconds", float(entry.get("seconds", 0.0)))
            self.client.log_metric(run_id, f"step.{name}.attempts", float(entry.get("attempts", 0)))
            self.client.set_tag(run_id, f"step.{name}.status", entry["status"])
            for key in ("inputs", "outputs", "errors"):
                if entry.get(key):
                    self.client.set_tag(run_id, f"step.{name}.{key}", json.dumps(entry[key], default=str)[:5000])
        except Exception as exc:
            log.warning("MLflow step record failed: %s", exc)

    def metrics(
        self, run_id: str | None, scores: dict[str, dict[str, float]], champion: dict[str, float] | None
    ) -> None:
        if not run_id:
            return
        try:
            for candidate, values in scores.items():
                for key, value in values.items():
                    if isinstance(value, int | float):
                        self.client.log_metric(run_id, f"{candidate}.{key}", float(value))
            for key, value in (champion or {}).items():
                if isinstance(value, int | float):
                    self.client.log_metric(run_id, f"champion.{key}", float(value))
        except Exception as exc:
            log.warning("MLflow metrics record failed: %s", exc)

    def finish(self, run_id: str | None, record: dict[str, Any]) -> None:
        if not run_id:
            return
        try:
            for key in ("status", "decision", "reason", "champion_before", "promoted_version"):
                if record.get(key) is not None:
                    self.client.set_tag(run_id, f"hyp.{key}", str(record[key])[:5000])
            state = {"succeeded": "FINISHED", "interrupted": "KILLED"}.get(record["status"], "FAILED")
            self.client.set_terminated(run_id, status=state)
        except Exception as exc:
            log.warning("MLflow finish record failed: %s", exc)
