"""Readers: Pub/Sub and detector summaries from /metrics text, warehouse counts, dead sources."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import pytest

from services.common.processes import free_port
from services.console import sources
from services.console.prometheus import parse


def pubsub_metrics(published: int, delivered: int, acked: int, backlog: int) -> str:
    topic = "projects/hyp-local/topics/hyp-pubsub-topic"
    sub = "projects/hyp-local/subscriptions/hyp_subscription_dataflow"
    labels = f'subscription="{sub}",topic="{topic}"'
    # the emulator's metric names (services/pubsub/metrics.py); subscription samples carry the topic too
    return f"""\
# TYPE pubsub_topic_messages_published_total counter
pubsub_topic_messages_published_total{{topic="{topic}"}} {published}
pubsub_topic_messages_published_total{{topic="projects/hyp-local/topics/hyp-deadletter"}} 3
# TYPE pubsub_topic_bytes_published_total counter
pubsub_topic_bytes_published_total{{topic="{topic}"}} {published * 500}
# TYPE pubsub_subscription_backlog_messages gauge
pubsub_subscription_backlog_messages{{{labels}}} {backlog}
# TYPE pubsub_subscription_oldest_unacked_message_age_seconds gauge
pubsub_subscription_oldest_unacked_message_age_seconds{{{labels}}} 1.5
# TYPE pubsub_subscription_delivered_total counter
pubsub_subscription_delivered_total{{{labels}}} {delivered}
# TYPE pubsub_subscription_acked_total counter
pubsub_subscription_acked_total{{{labels}}} {acked}
# TYPE pubsub_subscription_dead_lettered_total counter
pubsub_subscription_dead_lettered_total{{{labels}}} 2
"""


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


DETECTOR = """\
# TYPE hyp_detector_events counter
hyp_detector_events_total {events}
# TYPE hyp_detector_anomalies counter
hyp_detector_anomalies_total {anomalies}
# TYPE hyp_detector_deadlettered counter
hyp_detector_deadlettered_total 4
# TYPE hyp_detector_batch_size histogram
hyp_detector_batch_size_bucket{{le="10"}} 5
hyp_detector_batch_size_bucket{{le="100"}} 10
hyp_detector_batch_size_bucket{{le="+Inf"}} 10
hyp_detector_batch_size_sum 400
hyp_detector_batch_size_count 10
# TYPE hyp_detector_model_info gauge
hyp_detector_model_info{{model="purchase-anomaly",version="7"}} 1
"""


def test_detector_summary_rates_percentiles_and_version():
    before = parse(DETECTOR.format(events=100, anomalies=1))
    now = parse(DETECTOR.format(events=600, anomalies=6))
    d = sources.summarize_detector(now, before, 1.0)
    assert (d["events_per_s"], d["anomalies_per_s"], d["dead_lettered"]) == (500.0, 5.0, 4)
    assert d["batch_mean"] == 40.0
    assert d["batch_p50"] == 10.0
    assert d["model_version"] == "7"
    assert "latency_p50" not in d  # no latency histogram: nothing made up


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
