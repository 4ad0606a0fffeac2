"""Every shared metric name is one a service really exposes, under the label names the readers use."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from services.common import metric_names as m
from services.common import prometheus


def _names(prefix: str) -> dict[str, str]:
    return {k: v for k, v in vars(m).items() if k.startswith(prefix) and isinstance(v, str)}


def _exposes(scrape: prometheus.Scrape, name: str) -> bool:
    """A counter or gauge by its sample name; a histogram by its buckets."""
    return name in scrape.samples or name + "_bucket" in scrape.samples


def _page(registry: CollectorRegistry) -> prometheus.Scrape:
    return prometheus.parse(generate_latest(registry).decode())


def test_the_detectors_names():
    from services.detector.metrics import DetectorMetrics

    metrics = DetectorMetrics()
    metrics.model_version.labels("3").set(1)
    scrape = _page(metrics.registry)
    missing = [k for k, v in _names("DETECTOR_").items() if not _exposes(scrape, v)]
    assert missing == []
    assert scrape.samples[m.DETECTOR_MODEL_VERSION][0].labels == {m.MODEL_VERSION: "3"}


def test_the_endpoints_and_orchestrators_names():
    from services.endpoint.metrics import EndpointMetrics
    from services.orchestrator.metrics import OrchestratorMetrics

    endpoint, orchestrator = EndpointMetrics(), OrchestratorMetrics()
    endpoint.requests.labels("predict", "200").inc()
    endpoint.predictions.labels("1").inc()
    endpoint.latency.labels("predict").observe(0.01)
    endpoint.model_version.labels("purchase-anomaly", "1").set(1)
    orchestrator.runs.labels("drift").inc()
    orchestrator.outcomes.labels("ok", "promoted").inc()
    orchestrator.coalesced.labels("drift").inc()
    orchestrator.step_seconds.labels("train").observe(1.0)
    for gauge in (orchestrator.psi, orchestrator.ks, orchestrator.ks_p):
        gauge.labels("value").set(0.1)
    orchestrator.sensor_fired.labels("drift").inc()
    for prefix, registry in (("ENDPOINT_", endpoint.registry), ("ORCHESTRATOR_", orchestrator.registry)):
        scrape = _page(registry)
        assert [k for k, v in _names(prefix).items() if not _exposes(scrape, v)] == [], prefix


def test_the_processors_names():
    from services.processor.metrics import ProcessorMetrics

    metrics = ProcessorMetrics()
    metrics.outcomes.labels("ok").inc()
    metrics.latency.observe(0.01)
    metrics.endpoint_call(3, 0.005)
    scrape = _page(metrics.registry)
    assert [k for k, v in _names("PROCESSOR_").items() if not _exposes(scrape, v)] == []
    assert scrape.samples[m.PROCESSOR_PUSHES][0].labels == {"outcome": "ok"}


def test_the_emulators_names_and_labels():
    from services.pubsub import metrics

    topic, sub = "projects/p/topics/events", "projects/p/subscriptions/pull"
    counts: dict[str, Any] = {"published_total": 1, "published_bytes_total": 9, "retained_messages": 1}
    fields = ("backlog", "outstanding", "oldest_unacked_age_s", "delivered_total", "acked_total")
    fields += ("dead_lettered_total", "expired_total", "retention_expired_total")
    stats = {
        "uptime_s": 1.0,
        "topics": [{"name": topic, **counts}],
        "subscriptions": [{"name": sub, "topic": topic, **dict.fromkeys(fields, 1)}],
        "store": {
            "skipped_bytes": [{"log": "topic.log", "where": "tail", "bytes": 8}],
            **dict.fromkeys(("lost_messages", "migrated_logs", "set_aside", "write_failures"), 1),
        },
        "memory": dict.fromkeys(("retained_bytes", "budget_bytes", "rejected_total"), 1),
    }
    scrape = prometheus.parse(metrics.render(stats, {sub: {"ok": 1}}))
    assert [k for k, v in _names("PUBSUB_").items() if not _exposes(scrape, v)] == []
    assert scrape.samples[m.PUBSUB_TOPIC_PUBLISHED][0].labels == {m.TOPIC: topic}
    assert scrape.samples[m.PUBSUB_SUBSCRIPTION_BACKLOG][0].labels == {m.SUBSCRIPTION: sub, m.TOPIC: topic}
