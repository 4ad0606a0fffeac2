"""Prometheus metrics of the detector (``/metrics`` on ``--metrics-port``).

Created on first use, never at import, in one registry so a test can read them back. Where several
detector workers share one subscription (``--worker-id``), the page this process serves carries the
label ``worker_id`` on every sample, so a reader that scrapes all workers tells them apart and a sum
over the label is the whole job (:func:`serve`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from functools import lru_cache
from typing import Any

from services.common import metric_names as m
from services.detector.batch import Batch

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)


class DetectorMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(m.DETECTOR_EVENTS, "messages read and fully handled (acknowledged)", registry=r)
        self.purchases = Counter(m.DETECTOR_PURCHASES_SCORED, "purchase events scored", registry=r)
        self.anomalies = Counter(m.DETECTOR_ANOMALIES, "anomalies published to hyp-detections", registry=r)
        self.deadlettered = Counter(m.DETECTOR_DEADLETTERED, "messages sent to hyp-deadletter", registry=r)
        self.batch_size = Histogram(m.DETECTOR_BATCH_SIZE, "messages per batch", buckets=BATCH_BUCKETS, registry=r)
        self.latency = Histogram(
            m.DETECTOR_LATENCY,
            "end to end: the event's sent_at attribute to its batch being durable and acknowledged",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_version = Gauge(
            m.DETECTOR_MODEL_VERSION,
            "1 for the model version that scored the last batch (label model_version)",
            [m.MODEL_VERSION],
            registry=r,
        )
        self.commit_pending = Gauge(
            m.DETECTOR_COMMIT_PENDING, "messages loaded and waiting for the next warehouse commit", registry=r
        )
        self.commits = Counter(m.DETECTOR_COMMITS, "warehouse commits (each: two files, then one ack)", registry=r)
        self.commit_failures = Counter(
            m.DETECTOR_COMMIT_FAILURES,
            "warehouse commits that failed (a full disk ...): their messages given back",
            registry=r,
        )
        self.last_batch = Gauge(m.DETECTOR_LAST_BATCH, "when the last batch finished", registry=r)
        self._version: str | None = None
        self._lock = threading.Lock()

    def observe_batch(self, batch: Batch, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.events.inc(len(batch.messages))
        self.batch_size.observe(len(batch.messages))
        self.purchases.inc(len(batch.verdicts))
        self.anomalies.inc(sum(1 for v in batch.verdicts if v.get("is_anomaly")))
        self.deadlettered.inc(len(batch.rejected))
        for message in batch.messages:
            sent = message.attributes.get("sent_at")
            if sent:
                with contextlib.suppress(ValueError):
                    self.latency.observe(max(0.0, now - int(sent) / 1000))
        if batch.model_version and batch.model_version != self._version:
            with self._lock:
                if self._version is not None:
                    self.model_version.remove(self._version)
                self._version = str(batch.model_version)
                self.model_version.labels(self._version).set(1)
        self.last_batch.set(now)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> Any:
        return self.registry.get_sample_value(name, labels)


@lru_cache
def get_metrics() -> DetectorMetrics:
    return DetectorMetrics()


def observe_batch(batch: Batch) -> None:
    get_metrics().observe_batch(batch)


WORKER_ID = m.WORKER_ID  # the label of a worker's samples (several detectors on one subscription)


HOSTNAME = "hostname"  # --worker-id hostname: the machine's name (compose replicas share one command line)


def worker_label(worker_id: str) -> str:
    """The ``worker_id`` label value for ``--worker-id``: as given, or this host's name for ``hostname``."""
    if worker_id != HOSTNAME:
        return worker_id
    import re
    import socket

    return re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:63]


def labelled(registry: Any, labels: dict[str, str]) -> Any:
    """A registry that serves ``registry``'s samples with ``labels`` added to each (constant labels)."""
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector, CollectorRegistry

    class _Labelled(Collector):
        def collect(self) -> Any:
            for metric in registry.collect():
                out = Metric(metric.name, metric.documentation, metric.type, metric.unit)
                out.samples = [s._replace(labels={**s.labels, **labels}) for s in metric.samples]
                yield out

    served = CollectorRegistry(auto_describe=False)
    served.register(_Labelled())
    return served


def serve(port: int, host: str = "0.0.0.0", worker_id: str = "", allowed_hosts: str = "") -> Any:
    """Start the /metrics HTTP server in a daemon thread; returns the server (shutdown() to stop).

    With a ``worker_id`` every sample carries ``worker_id="<id>"``. Requests for a Host that is not one of ours
    (``allowed_hosts``: HYP_ALLOWED_HOSTS) are refused, as by every hyp HTTP service (services/common/hosts.py)."""
    from services.common import hosts

    registry = get_metrics().registry
    if worker_id:
        registry = labelled(registry, {WORKER_ID: worker_id})
    return hosts.serve_metrics(registry, host, port, hosts.allowed_names(host, allowed_hosts))
