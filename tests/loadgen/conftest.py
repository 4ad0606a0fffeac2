"""Helpers for the loadgen tests: the anomaly definitions of docs/loadgen.md, checked from one payload."""

from __future__ import annotations

from typing import Any

import pytest

from loadgen.config import GeneratorConfig


def purchase_features(event: dict[str, Any]) -> dict[str, float]:
    p = event["ecommerce"]["purchase"]
    items = p["items"]
    total = sum(i["price"] * i["quantity"] for i in items)
    return {
        "value": p["value"],
        "tax": p["tax"],
        "shipping": p["shipping"],
        "items_total": total,
        "max_qty": max(i["quantity"] for i in items),
        "lines": len(items),
    }


def matches_kind(f: dict[str, float]) -> set[str]:
    """Which anomaly definitions (docs/loadgen.md) a purchase's payload satisfies."""
    kinds = set()
    if f["value"] <= 0 or f["tax"] < 0 or f["shipping"] < 0:
        kinds.add("nonpositive_amount")
        return kinds
    if f["value"] >= 20_000:
        kinds.add("value_spike")
    ratio = f["value"] / f["items_total"]
    if not 0.84 <= ratio <= 1.0001:
        kinds.add("value_mismatch")
    if not 0.045 <= f["tax"] / f["value"] <= 0.255:
        kinds.add("tax_mismatch")
    if f["shipping"] > 100:
        kinds.add("shipping_outlier")
    if f["max_qty"] >= 10:
        kinds.add("burst")
    return kinds


@pytest.fixture
def purchases_only() -> GeneratorConfig:
    return GeneratorConfig(mix={"purchase": 1.0}, clock="simulated")
