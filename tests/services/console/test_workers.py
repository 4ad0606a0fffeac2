"""Several detector workers: the console scrapes each worker's /metrics (a comma list, as `hyp up
--detector-workers N` serves them), shows one row per ``worker_id`` with its own rates and model version,
the job's totals over all of them, and a worker that does not answer as down with the reason."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import start_http_server

from services.common.processes import free_port
from services.console.collector import Collector
from services.console.live import LiveAnomalies
from services.detector.batch import Batch, Message
from services.detector.metrics import DetectorMetrics, labelled
from tests.services.console.test_collector import Clock, settings

pytestmark = pytest.mark.local_only("the console's detector view")


def worker(worker_id: str) -> tuple[DetectorMetrics, str]:
    """A detector's real metrics, served with its worker label as `hyp detector --worker-id` serves them."""
    metrics = DetectorMetrics()
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=labelled(metrics.registry, {"worker_id": worker_id}))
    metrics.server = server  # type: ignore[attr-defined]
    return metrics, f"http://127.0.0.1:{port}/metrics"


def batch(n: int, anomalies: int, version: str) -> Batch:
    verdicts = [{"is_anomaly": i < anomalies} for i in range(n)]
    messages = tuple(Message(b"{}", {}, str(i), 0) for i in range(n))  # no sent_at: no latency sample
    return Batch(messages=messages, verdicts=tuple(verdicts), model_version=version)


def test_each_worker_has_its_row_and_the_job_its_totals(tmp_path):
    (w0, url0), (w1, url1) = worker("detector-0"), worker("detector-1")
    gone = f"http://127.0.0.1:{free_port()}/metrics"
    clock = Clock()
    urls = ",".join([url0, url1, gone])
    collector = Collector(settings(tmp_path, HYP_CONSOLE_DETECTOR_METRICS_URL=urls), LiveAnomalies(), clock=clock)

    async def run() -> dict:
        w0.observe_batch(batch(10, 1, "3"))
        w1.observe_batch(batch(4, 0, "3"))
        await collector.refresh()
        w0.observe_batch(batch(20, 2, "4"))  # worker 0 reloaded v4; worker 1 still scores with v3
        w1.observe_batch(batch(10, 0, "3"))
        clock.now += 2.0
        snap = await collector.refresh()
        await collector.close()
        return snap["detector"]

    try:
        detector = asyncio.run(run())
    finally:
        w0.server.shutdown()
        w1.server.shutdown()
    assert detector["healthy"] is True
    assert detector["events"] == 44 and detector["events_per_s"] == pytest.approx(15.0)
    rows = {r["worker"]: r for r in detector["workers"]}
    assert set(rows) == {"detector-0", "detector-1", gone}
    assert rows["detector-0"]["events_per_s"] == pytest.approx(10.0)
    assert rows["detector-0"]["anomalies_per_s"] == pytest.approx(1.0)
    assert rows["detector-0"]["model_version"] == "4"
    assert rows["detector-1"]["events_per_s"] == pytest.approx(5.0) and rows["detector-1"]["model_version"] == "3"
    assert rows[gone]["healthy"] is False and rows[gone]["error"]


def test_one_detector_without_worker_label_has_no_worker_rows(tmp_path):
    metrics = DetectorMetrics()
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    s = settings(tmp_path, HYP_CONSOLE_DETECTOR_METRICS_URL=f"http://127.0.0.1:{port}/metrics")
    collector = Collector(s, LiveAnomalies(), clock=Clock())

    async def run() -> dict:
        metrics.observe_batch(batch(5, 0, "1"))
        snap = await collector.refresh()
        await collector.close()
        return snap["detector"]

    try:
        detector = asyncio.run(run())
    finally:
        server.shutdown()
    assert detector["events"] == 5 and detector["workers"] == []
