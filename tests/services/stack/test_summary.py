"""The live summary reads Prometheus text and the warehouse (labels from attributes only)."""

from __future__ import annotations

import json
from datetime import datetime

from prometheus_client import generate_latest

from services.common import metric_names as m
from services.common import prometheus
from services.detector.metrics import DetectorMetrics
from services.pubsub import metrics as pubsub_metrics
from services.stack import summary
from services.warehouse import append

METRICS = """\
# HELP pubsub_topic_messages_published_total Messages published.
# TYPE pubsub_topic_messages_published_total counter
pubsub_topic_messages_published_total{topic="projects/hyp-local/topics/hyp-pubsub-topic"} 1500.0
pubsub_topic_messages_published_total{topic="projects/hyp-local/topics/hyp-deadletter"} 3.0
pubsub_topic_messages_published_created{topic="projects/hyp-local/topics/hyp-pubsub-topic"} 1.7e9
hyp_detector_model_version{model_version="7"} 1.0
hyp_detector_model_version{model_version="6"} 0.0
"""


def test_parse_and_sum_by_label():
    samples = summary.parse_metrics(METRICS)
    assert summary.value(samples, m.PUBSUB_TOPIC_PUBLISHED, topic="hyp-deadletter") == 3
    assert summary.parse_metrics(METRICS + "garbage {line\n").samples == {}  # not a metrics page: nothing made up


def test_exact_names_and_labels():
    samples = summary.parse_metrics(METRICS)
    assert summary.value(samples, m.PUBSUB_TOPIC_PUBLISHED, topic="hyp-pubsub-topic") == 1500
    assert summary.value(samples, m.PUBSUB_TOPIC_PUBLISHED, topic="pubsub-topic") is None  # no partial names
    assert summary.value(samples, "messages_published", topic="hyp-pubsub-topic") is None  # no partial metrics
    assert samples.label(m.DETECTOR_MODEL_VERSION, m.MODEL_VERSION) == "7"


def test_snapshot_reads_the_emulators_and_the_detectors_own_metrics(tmp_path):
    topic = "projects/hyp-local/topics/"
    em = {
        "uptime_s": 1.0,
        "topics": [
            {"name": topic + name, "published_total": n, "published_bytes_total": 0, "retained_messages": 0}
            for name, n in (("hyp-pubsub-topic", 900), ("hyp-detections", 12), ("hyp-deadletter", 2))
        ],
        "subscriptions": [],
    }
    detector = DetectorMetrics()
    detector.events.inc(850)
    detector.model_version.labels("4").set(1)
    snap = summary.from_samples(
        summary.parse_metrics(pubsub_metrics.render(em)),
        summary.parse_metrics(generate_latest(detector.registry).decode()),
        None,
        at=5.0,
    )
    assert (snap.published, snap.anomalies, snap.deadlettered) == (900, 12, 2)
    assert (snap.detector_events, snap.model_version, snap.at) == (850, "4", 5.0)
    # without the emulator's page the detector's own counters are used
    detector.anomalies.inc(11)
    detector.deadlettered.inc(3)
    alone = summary.from_samples(
        prometheus.Scrape(), summary.parse_metrics(generate_latest(detector.registry).decode()), None
    )
    assert (alone.published, alone.anomalies, alone.deadlettered) == (None, 11, 3)


def _anomaly_row(i: int, flagged: bool, labelled: bool) -> dict:
    now = datetime(2026, 11, 22, 12, 0, i)
    return {
        "event_datetime": now,
        "transaction_id": f"t{i}",
        "user_id": "u",
        "tax": 1.0,
        "shipping": 2.0,
        "value": 10.0,
        "anomaly": flagged,
        "score": 0.9 if flagged else 0.1,
        "model_version": "3",
        "message_id": str(i),
        "attributes": json.dumps({"anomaly": "1" if labelled else "0", "anomaly_kind": "value_spike"}),
        "source": "detector",
        "scored_at": now,
    }


def test_precision_and_recall_from_the_warehouse(tmp_path):
    # 3 flagged (2 right), 4 labelled anomalies, 5 normal: precision 2/3, recall 2/4
    rows = [_anomaly_row(0, True, True), _anomaly_row(1, True, True), _anomaly_row(2, True, False)]
    rows += [_anomaly_row(3 + i, False, True) for i in range(2)]
    rows += [_anomaly_row(5 + i, False, False) for i in range(5)]
    append(tmp_path, "cloud_run_anomaly", rows)
    stats = summary.warehouse_stats(tmp_path)
    assert stats is not None
    assert (stats.flagged, stats.true_positives, stats.labelled_anomalies) == (3, 2, 4)
    assert abs(stats.precision - 2 / 3) < 1e-9 and stats.recall == 0.5
    assert stats.model_version == "3"
    assert [r["transaction_id"] for r in stats.latest] == ["t0", "t1", "t2"]
    later = summary.warehouse_stats(tmp_path, latest_after=stats.latest[-1]["at"])
    assert later is not None and later.latest == []


def test_empty_warehouse_shows_dashes(tmp_path):
    snap = summary.take(None, None, tmp_path / "missing")
    text = summary.line(snap, None)
    assert "precision -" in text and "anomalies" in text


def test_refreshes_read_new_files_only_and_compaction_counts_once(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from services.warehouse.query import files

    append(tmp_path, "cloud_run_anomaly", [_anomaly_row(0, True, True), _anomaly_row(1, False, True)])
    first = summary.warehouse_stats(tmp_path)
    assert first is not None and (first.scored, first.flagged, first.labelled_anomalies) == (2, 1, 2)
    append(tmp_path, "cloud_run_anomaly", [_anomaly_row(2, True, False)])
    second = summary.warehouse_stats(tmp_path)
    assert second is not None and (second.scored, second.flagged, second.true_positives) == (3, 2, 1)
    assert [r["transaction_id"] for r in second.latest] == ["t2"]  # only what the new file holds
    sources = files(tmp_path, "cloud_run_anomaly")  # compaction, by hand: one file replaces both
    pq.write_table(pa.concat_tables([pq.read_table(f) for f in sources]), sources[0].parent / "part-merged.parquet")
    for f in sources:
        f.unlink()
    third = summary.warehouse_stats(tmp_path)
    assert third is not None and (third.scored, third.flagged, third.true_positives) == (3, 2, 1)


def test_events_in_the_warehouse_count_each_event_once_whichever_writer_runs(tmp_path):
    from services.common.events import event_row
    from services.testing import events

    append(tmp_path, "dataflow", [event_row(events.purchase(10.0 + i)) for i in range(3)])  # the detector alone
    first = summary.warehouse_stats(tmp_path)
    assert first is not None and first.events == 3
    append(tmp_path, "cloud_run", [event_row(events.purchase(10.0 + i)) for i in range(2)])  # the processor behind
    second = summary.warehouse_stats(tmp_path)
    assert second is not None and second.events == 3  # the same events, not 5
