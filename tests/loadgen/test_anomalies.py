"""Anomaly kinds: rates per kind on 100,000 events, and labels that agree with the payload."""

from __future__ import annotations

import math

from loadgen.config import ANOMALY_KINDS, DEFAULT_ANOMALY_RATES, GeneratorConfig
from loadgen.generator import EventGenerator
from tests.loadgen.conftest import matches_kind, purchase_features

N = 100_000


def test_rates_per_kind_within_tolerance(purchases_only):
    gen = EventGenerator(2026, purchases_only)
    counts = dict.fromkeys(ANOMALY_KINDS, 0)
    for _, attributes in gen.next_batch(N):
        if attributes["anomaly"] == "1":
            counts[attributes["anomaly_kind"]] += 1
    lo, hi = purchases_only.burst_size
    for kind, rate in DEFAULT_ANOMALY_RATES.items():
        expected = rate * N
        # 4 standard deviations: binomial for single events, compound (bursts of ~10) for bursts
        sd = math.sqrt(expected * ((lo + hi) / 2 if kind == "burst" else 1.0))
        assert abs(counts[kind] - expected) <= 4 * sd, (kind, counts[kind], expected)
    assert abs(sum(counts.values()) / N - 0.01) < 0.002


def test_labels_agree_with_what_was_injected(purchases_only):
    config = GeneratorConfig(**{**purchases_only.model_dump(), "anomaly_rates": {k: 0.03 for k in ANOMALY_KINDS}})
    pairs = EventGenerator(7, config).next_batch(30_000)
    seen = dict.fromkeys(("", *ANOMALY_KINDS), 0)
    for event, attributes in pairs:
        kind = attributes["anomaly_kind"]
        seen[kind] += 1
        found = matches_kind(purchase_features(event))
        if kind:
            assert kind in found, (kind, found, event)
        else:
            assert not found, (found, event)  # a normal purchase never meets an anomaly definition
    assert all(seen[k] > 100 for k in ANOMALY_KINDS), seen


def test_bursts_are_runs_of_one_user_buying_one_product_in_bulk(purchases_only):
    config = GeneratorConfig(**{**purchases_only.model_dump(), "anomaly_rates": {"burst": 0.05}})
    pairs = EventGenerator(9, config).next_batch(20_000)
    runs, current = [], []
    for event, attributes in pairs:
        if attributes["anomaly_kind"] == "burst":
            current.append(event)
        elif current:
            runs.append(current)
            current = []
    assert len(runs) > 20
    lo = config.burst_size[0]
    for run in runs:
        users = {e["user_id"] for e in run}
        products = {e["ecommerce"]["purchase"]["items"][0]["item_id"] for e in run}
        # back-to-back bursts can touch; each burst is lo..hi purchases of one user and one product
        assert len(users) == len(products) and len(run) >= lo * len(users)
        assert all(len(e["ecommerce"]["purchase"]["items"]) == 1 for e in run)
        assert all(e["ecommerce"]["purchase"]["items"][0]["quantity"] >= 10 for e in run)
