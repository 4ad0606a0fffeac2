"""Parsing the services' /metrics pages and histogram quantiles."""

from __future__ import annotations

import pytest

from services.common import prometheus

TEXT = """\
# HELP hyp_detector_latency_seconds end-to-end latency
# TYPE hyp_detector_latency_seconds histogram
hyp_detector_latency_seconds_bucket{le="0.1"} 10
hyp_detector_latency_seconds_bucket{le="0.5"} 60
hyp_detector_latency_seconds_bucket{le="1.0"} 90
hyp_detector_latency_seconds_bucket{le="+Inf"} 100
hyp_detector_latency_seconds_sum 42.0
hyp_detector_latency_seconds_count 100
# TYPE hyp_detector_events counter
hyp_detector_events_total{event="purchase"} 30
hyp_detector_events_total{event="view_item"} 70
"""


def test_parse_keeps_samples_by_name_and_sums_labels():
    scrape = prometheus.parse(TEXT)
    assert scrape.total("hyp_detector_events_total") == 100
    assert scrape.total("hyp_detector_events_total", event="purchase") == 30
    assert scrape.total("hyp_detector_latency_seconds_count") == 100


def test_names_are_exact_never_guessed_from_a_part():
    scrape = prometheus.parse(TEXT)
    assert scrape.total("events_total") is None
    assert scrape.total("hyp_detector_events") is None  # the family name is not a sample name
    assert scrape.histogram("latency_seconds") == []


def test_quantiles_interpolate_within_a_bucket_like_prometheus():
    buckets = prometheus.parse(TEXT).histogram("hyp_detector_latency_seconds")
    assert buckets[-1] == (float("inf"), 100)
    # rank 50 lies in (0.1, 0.5] holding ranks 10..60: 0.1 + 0.4 * 40/50
    assert prometheus.quantile(buckets, 0.5) == pytest.approx(0.42)
    # rank 95 is in the +Inf bucket: the highest finite bound is the answer
    assert prometheus.quantile(buckets, 0.95) == 1.0
    assert prometheus.quantile([], 0.5) is None
    assert prometheus.quantile([(1.0, 0.0), (float("inf"), 0.0)], 0.5) is None


def test_bucket_delta_is_the_interval_and_survives_a_restart():
    before = [(0.1, 5.0), (float("inf"), 10.0)]
    now = [(0.1, 8.0), (float("inf"), 20.0)]
    assert prometheus.bucket_delta(now, before) == [(0.1, 3.0), (float("inf"), 10.0)]
    restarted = [(0.1, 1.0), (float("inf"), 2.0)]
    assert prometheus.bucket_delta(restarted, before) == restarted


def test_garbage_is_a_value_error_naming_metrics():
    with pytest.raises(ValueError, match="metrics"):
        prometheus.parse("this is {not prometheus\n")
