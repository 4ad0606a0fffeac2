"""Readers: Pub/Sub and detector summaries from /metrics text, warehouse counts, dead sources."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from services.common.processes import free_port
from services.common.prometheus import parse
from services.console import sources
from services.detector.metrics import DetectorMetrics
from services.pubsub import metrics as pubsub_metrics_text


def pubsub_metrics(published: int, delivered: int, acked: int, backlog: int) -> str:
    """The emulator's own /metrics text (services/pubsub/metrics.py) for one topic and its subscription."""
    topic = "projects/hyp-local/topics/hyp-pubsub-topic"
    counts = {"published_total": published, "published_bytes_total": published * 500, "retained_messages": backlog}
    name = "projects/hyp-local/subscriptions/hyp_subscription_dataflow"
    sub: dict[str, Any] = {
        "name": name,
        "topic": topic,
        "backlog": backlog,
        "outstanding": 0,
        "oldest_unacked_age_s": 1.5,
        "delivered_total": delivered,
        "acked_total": acked,
        "dead_lettered_total": 2,
        "expired_total": 0,
        "retention_expired_total": 0,
    }
    stats: dict[str, Any] = {
        "uptime_s": 10.0,
        "topics": [
            {"name": topic, **counts},
            {"name": "projects/hyp-local/topics/hyp-deadletter", **{**counts, "published_total": 3}},
        ],
        "subscriptions": [sub],
    }
    return pubsub_metrics_text.render(stats, {name: {"acked": acked}})


def test_pubsub_summary_has_counts_and_rates_per_topic_and_subscription():
    before = parse(pubsub_metrics(1000, 900, 800, 100))
    now = parse(pubsub_metrics(3000, 2900, 2700, 300))
    summary = sources.summarize_pubsub(now, before, 2.0)
    topic = next(t for t in summary["topics"] if t["name"] == "hyp-pubsub-topic")
    assert topic == {"name": "hyp-pubsub-topic", "published": 3000, "publish_rate": 1000.0}
    (sub,) = summary["subscriptions"]
    assert sub["name"] == "hyp_subscription_dataflow"
    assert (sub["backlog"], sub["oldest_unacked_s"], sub["dead_lettered"]) == (300, 1.5, 2)
    assert (sub["delivery_rate"], sub["ack_rate"]) == (1000.0, 950.0)
    assert summary["events_per_s"] == 1000.0
    assert summary["dead_lettered"] == 3


def test_first_scrape_and_counter_resets_give_no_negative_rates():
    now = parse(pubsub_metrics(10, 10, 10, 0))
    assert sources.summarize_pubsub(now, None, 0.0)["events_per_s"] is None
    after_restart = sources.summarize_pubsub(now, parse(pubsub_metrics(5000, 10, 10, 0)), 1.0)
    assert after_restart["events_per_s"] == 0.0


def detector_metrics(events: int, anomalies: int) -> str:
    """The detector's own /metrics text (services/detector/metrics.py)."""
    metrics = DetectorMetrics()
    metrics.events.inc(events)
    metrics.anomalies.inc(anomalies)
    metrics.deadlettered.inc(4)
    for size in (5, 5, 5, 5, 5, 75, 75, 75, 75, 75):
        metrics.batch_size.observe(size)
    metrics.model_version.labels("7").set(1)
    return generate_latest(metrics.registry).decode()


def test_detector_summary_rates_percentiles_and_version():
    before = parse(detector_metrics(events=100, anomalies=1))
    now = parse(detector_metrics(events=600, anomalies=6))
    d = sources.summarize_detector(now, before, 1.0)
    assert (d["events"], d["events_per_s"], d["anomalies_per_s"], d["dead_lettered"]) == (600, 500.0, 5.0, 4)
    assert d["batch_mean"] == 40.0
    # the interval's buckets: the two scrapes hold the same observations, so the totals are used
    assert d["batch_p50"] == 10.0
    assert d["model_version"] == "7"
    assert d["latency_p50"] is None  # an empty latency histogram: no percentile made up


def test_detector_summary_of_a_page_without_the_detectors_metrics_is_empty_not_guessed():
    other = parse("# TYPE some_events counter\nsome_events_total 5\n# TYPE x_model_version gauge\nx_model_version 3\n")
    d = sources.summarize_detector(other, None, 1.0)
    assert (d["events"], d["anomalies"], d["dead_lettered"], d["model_version"]) == (None, None, None, None)
    assert "batch_p50" not in d and "latency_p50" not in d


def test_warehouse_counts_rows_and_forgets_compacted_files(tmp_path):
    from services.warehouse import append

    counter = sources.WarehouseCounter()
    assert counter.counts(tmp_path / "missing")["tables"]["cloud_run"] == 0
    row = {"subscription_name": "s", "message_id": "1", "publish_time": datetime(2026, 11, 22), "data": "{}"}
    append(tmp_path, "pubsub_direct", [row, {**row, "message_id": "2"}])
    append(tmp_path, "pubsub_direct", [row])
    got = counter.counts(tmp_path)
    assert got["healthy"] and got["tables"]["pubsub_direct"] == 3 and got["tables"]["cloud_run"] == 0
    for f in (tmp_path / "pubsub_direct").rglob("*.parquet"):
        f.unlink()
        break
    assert counter.counts(tmp_path)["tables"]["pubsub_direct"] in {1, 2}


def test_warehouse_counts_without_importing_duckdb(tmp_path):
    """The console lists live files and reads footers with pyarrow: DuckDB (16 MiB resident) stays unloaded
    in its process (a fresh one: the test session has DuckDB loaded already)."""
    import subprocess
    import sys
    from pathlib import Path

    from services.warehouse import append

    row = {"subscription_name": "s", "message_id": "1", "publish_time": datetime(2026, 11, 22), "data": "{}"}
    append(tmp_path, "pubsub_direct", [row, {**row, "message_id": "2"}])
    code = (
        "import sys\n"
        "from services.console.sources import WarehouseCounter\n"
        "print(WarehouseCounter().counts(sys.argv[1])['tables']['pubsub_direct'], 'duckdb' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "False"]


def test_dead_sources_are_unhealthy_with_a_reason_never_an_exception():
    url = f"http://127.0.0.1:{free_port()}"

    async def read():
        async with httpx.AsyncClient(timeout=0.5) as client:
            return (
                await sources.fetch(client, url + "/health"),
                await sources.read_models(client, url, "purchase-anomaly", "champion", {}),
                await sources.read_orchestrator(client, url),
            )

    probe, models, orchestrator = asyncio.run(read())
    for got in (probe, models, orchestrator):
        assert got["healthy"] is False
        assert "Connect" in got["error"]


@pytest.mark.parametrize(
    ("status", "body", "expect", "healthy"),
    [(200, "Ok.", "Ok.", True), (200, "nope", "Ok.", False), (503, "Ok.", None, False), (200, "", None, True)],
)
def test_fetch_health_rules(status, body, expect, healthy):
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text=body))

    async def read():
        async with httpx.AsyncClient(transport=transport) as client:
            return await sources.fetch(client, "http://127.0.0.1:1/", expect=expect)

    assert asyncio.run(read())["healthy"] is healthy
