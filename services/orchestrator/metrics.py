"""Prometheus metrics of the orchestrator, in a registry of their own (one per app, so tests don't collide)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common import metric_names as m


@dataclass
class OrchestratorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.runs = Counter(m.ORCHESTRATOR_RUNS, "Runs started, by trigger", ["trigger"], registry=r)
        self.outcomes = Counter(
            m.ORCHESTRATOR_RUN_OUTCOMES, "Finished runs, by status and decision", ["status", "decision"], registry=r
        )
        self.coalesced = Counter(
            m.ORCHESTRATOR_TRIGGERS_COALESCED,
            "Triggers joined to a run already in progress",
            ["trigger"],
            registry=r,
        )
        self.in_progress = Gauge(m.ORCHESTRATOR_RUN_IN_PROGRESS, "1 while a run is in progress", registry=r)
        self.step_seconds = Histogram(
            m.ORCHESTRATOR_STEP_SECONDS,
            "Duration of run steps",
            ["step"],
            buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
            registry=r,
        )
        self.psi = Gauge(m.ORCHESTRATOR_DRIFT_PSI, "Population stability index, by feature", ["feature"], registry=r)
        self.ks = Gauge(
            m.ORCHESTRATOR_DRIFT_KS_STATISTIC, "Two-sample KS statistic, by feature", ["feature"], registry=r
        )
        self.ks_p = Gauge(m.ORCHESTRATOR_DRIFT_KS_PVALUE, "Two-sample KS p-value, by feature", ["feature"], registry=r)
        self.champion = Gauge(m.ORCHESTRATOR_CHAMPION_VERSION, "Champion version after the last run", registry=r)
        self.sensor_fired = Counter(m.ORCHESTRATOR_SENSOR_FIRED, "Sensor firings, by sensor", ["sensor"], registry=r)
