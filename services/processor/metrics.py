"""Prometheus metrics of the processor, in a registry of its own (one per app, so tests can make many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.common import metric_names as m

PUSH_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
ENDPOINT_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5)
INSTANCE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


class ProcessorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.outcomes = Counter(m.PROCESSOR_PUSHES, "Pushes by outcome", ["outcome"], registry=self.registry)
        self.latency = Histogram(
            m.PROCESSOR_PUSH_SECONDS,
            "Push handling time, body to durable rows",
            buckets=PUSH_BUCKETS,
            registry=self.registry,
        )
        self.endpoint_latency = Histogram(
            m.PROCESSOR_ENDPOINT_SECONDS,
            "Endpoint predict call time",
            buckets=ENDPOINT_BUCKETS,
            registry=self.registry,
        )
        self.endpoint_instances = Histogram(
            m.PROCESSOR_ENDPOINT_INSTANCES,
            "Instances per endpoint predict call (pushes batched together)",
            buckets=INSTANCE_BUCKETS,
            registry=self.registry,
        )

    def endpoint_call(self, instances: int, seconds: float) -> None:
        """One endpoint :predict call (PredictBatcher's ``on_call``)."""
        self.endpoint_latency.observe(seconds)
        self.endpoint_instances.observe(instances)
