"""Prometheus metrics of the orchestrator, in a registry of their own (one per app, so tests don't collide)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class OrchestratorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.runs = Counter("hyp_orchestrator_runs", "Runs started, by trigger", ["trigger"], registry=r)
        self.outcomes = Counter(
            "hyp_orchestrator_run_outcomes", "Finished runs, by status and decision", ["status", "decision"], registry=r
        )
        self.coalesced = Counter(
            "hyp_orchestrator_triggers_coalesced",
            "Triggers joined to a run already in progress",
            ["trigger"],
            registry=r,
        )
        self.in_progress = Gauge("hyp_orchestrator_run_in_progress", "1 while a run is in progress", registry=r)
        self.step_seconds = Histogram(
            "hyp_orchestrator_step_seconds",
            "Duration of run steps",
            ["step"],
            buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
            registry=r,
        )
        self.psi = Gauge(
            "hyp_orchestrator_drift_psi", "Population stability index, by feature", ["feature"], registry=r
        )
        self.ks = Gauge(
            "hyp_orchestrator_drift_ks_statistic", "Two-sample KS statistic, by feature", ["feature"], registry=r
        )
        self.ks_p = Gauge(
            "hyp_orchestrator_drift_ks_pvalue", "Two-sample KS p-value, by feature", ["feature"], registry=r
        )
        self.champion = Gauge("hyp_orchestrator_champion_version", "Champion version after the last run", registry=r)
        self.sensor_fired = Counter(
            "hyp_orchestrator_sensor_fired", "Sensor firings, by sensor", ["sensor"], registry=r
        )
