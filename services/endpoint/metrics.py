"""Prometheus metrics of the endpoint, in a registry of its own (one per app, so tests can make many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common import metric_names as m

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class EndpointMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            m.ENDPOINT_REQUESTS,
            "Prediction requests by route and status code",
            ["route", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            m.ENDPOINT_REQUEST_SECONDS,
            "Prediction request latency (body read to response built)",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            m.ENDPOINT_BATCH_SIZE,
            "Instances per prediction request",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            m.ENDPOINT_PREDICTIONS, "Instances scored, by model version", ["version"], registry=self.registry
        )
        self.model_version = Gauge(
            m.ENDPOINT_MODEL_VERSION,
            "1 for the model version being served",
            ["model", "version"],
            registry=self.registry,
        )
        self.reloads = Counter(m.ENDPOINT_MODEL_SWAPS, "Model version switches", registry=self.registry)
