"""The stream: schema, determinism, labels only in attributes."""

from __future__ import annotations

import json

import pytest

from loadgen.config import ANOMALY_KINDS, EVENT_TYPES, GeneratorConfig
from loadgen.generator import EventGenerator
from services.common.events import LABEL_ATTRIBUTES, event_row, parse_event, validate_event

HEAVY = {k: 0.05 for k in ANOMALY_KINDS}  # 30% anomalies, so every kind shows up often


@pytest.mark.parametrize("rates", [None, HEAVY], ids=["default", "heavy-anomalies"])
def test_every_event_validates_and_flattens(rates):
    config = GeneratorConfig(**({"anomaly_rates": rates} if rates else {}))
    pairs = EventGenerator(11, config).next_batch(20_000)
    assert {e["event"] for e, _ in pairs} == set(EVENT_TYPES)
    for event, attributes in pairs:
        assert validate_event(event) is event
        assert parse_event(json.dumps(event)) == event
        row = event_row(event)
        assert row["items_count"] >= 1
        assert attributes["event"] == event["event"]


def test_attributes_carry_the_labels():
    gen = EventGenerator(3, GeneratorConfig(anomaly_rates=HEAVY, run_id="r-1"))
    pairs = gen.next_batch(5000, now=1_800_000_000.0)
    for event, attributes in pairs:
        assert set(attributes) == {"anomaly", "anomaly_kind", "event", "sent_at", "run_id"}
        assert attributes["sent_at"] == "1800000000000"  # epoch milliseconds at send time
        assert attributes["run_id"] == "r-1"
        if attributes["anomaly"] == "1":
            assert attributes["anomaly_kind"] in ANOMALY_KINDS
            assert event["event"] == "purchase"
        else:
            assert attributes["anomaly"] == "0" and attributes["anomaly_kind"] == ""
    assert {a["anomaly_kind"] for _, a in pairs} == {"", *ANOMALY_KINDS}


def test_payload_has_no_labels():
    pairs = EventGenerator(5, GeneratorConfig(anomaly_rates=HEAVY, run_id="secret-run")).next_batch(5000)
    for event, _ in pairs:
        text = json.dumps(event)
        for label in (*LABEL_ATTRIBUTES, "anomaly", "sent_at", "secret-run", *ANOMALY_KINDS):
            assert label not in text


def test_same_seed_same_events_whatever_the_batch_sizes():
    config = GeneratorConfig(clock="simulated", anomaly_rates=HEAVY)
    a = EventGenerator(42, config).next_batch(9000, now=0.0)
    gen = EventGenerator(42, config)
    b = []
    for size in (1, 7, 4095, 3, 4894):
        b.extend(gen.next_batch(size, now=0.0))
    assert [e for e, _ in a] == [e for e, _ in b]
    assert [x["anomaly_kind"] for _, x in a] == [x["anomaly_kind"] for _, x in b]
    c = EventGenerator(43, config).next_batch(9000, now=0.0)
    assert [e for e, _ in a] != [e for e, _ in c]


def test_real_clock_same_events_but_timestamps():
    a = EventGenerator(1).next_batch(500, now=1_700_000_000.0)
    b = EventGenerator(1).next_batch(500, now=1_800_000_000.0)
    strip = [{k: v for k, v in e.items() if k != "event_datetime"} for e, _ in a]
    assert strip == [{k: v for k, v in e.items() if k != "event_datetime"} for e, _ in b]
    assert a[0][0]["event_datetime"].startswith("2023-11-14 22:13:20")


def test_simulated_clock_moves_forward_from_start():
    from datetime import datetime

    config = GeneratorConfig(clock="simulated", start=datetime(2026, 1, 1), sim_rate=10.0)
    times = [e["event_datetime"] for e, _ in EventGenerator(2, config).next_batch(1000)]
    assert times == sorted(times)
    assert times[0].startswith("2026-01-01 00:00")
    assert "2026-01-01 00:01" <= times[-1] <= "2026-01-01 00:03"  # ~100 s of simulated time


def test_mix_follows_the_config():
    config = GeneratorConfig(mix={"view_item": 1, "purchase": 1})
    kinds = [e["event"] for e, _ in EventGenerator(4, config).next_batch(10_000)]
    assert "add_to_cart" not in kinds
    assert 0.45 < kinds.count("purchase") / len(kinds) < 0.55


def test_drift_shifts_values_without_labels():
    base = GeneratorConfig(mix={"purchase": 1.0}, anomaly_rates={})
    drifted = GeneratorConfig(**{**base.model_dump(), "drift": {"price_factor": 2.0}})

    def median_value(config):
        values = sorted(e["ecommerce"]["purchase"]["value"] for e, _ in EventGenerator(8, config).next_batch(5000))
        return values[len(values) // 2]

    pairs = EventGenerator(8, drifted).next_batch(5000)
    assert all(a["anomaly"] == "0" for _, a in pairs)
    assert 1.7 < median_value(drifted) / median_value(base) < 2.3
