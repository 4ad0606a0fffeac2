"""Publish templates: one message of each event type the stack carries, and one per injected anomaly
kind, drawn from the load generator (the same events and attributes `hyp loadgen` publishes)."""

from __future__ import annotations

from typing import Any

DRAWS = 400  # events drawn to find one of a kind (half the purchases carry it): far more than enough


def templates(seed: int | None = None) -> dict[str, dict[str, Any]]:
    """``{name: {"data": JSON text, "attributes": {...}}}``: ``view_item``, ``add_to_cart``, ``purchase``
    (normal) and ``purchase (<kind>)`` for each anomaly kind, with timestamps of now."""
    import json

    from loadgen.config import ANOMALY_KINDS, EVENT_TYPES, GeneratorConfig
    from loadgen.generator import EventGenerator

    out: dict[str, dict[str, Any]] = {}
    normal = EventGenerator(seed=seed, config=GeneratorConfig(anomaly_rates={}))
    for event, attributes in normal.next_batch(DRAWS):
        if event["event"] in EVENT_TYPES and event["event"] not in out:
            out[event["event"]] = {"data": json.dumps(event, indent=1), "attributes": attributes}
    for kind in ANOMALY_KINDS:
        config = GeneratorConfig(mix={"purchase": 1.0}, anomaly_rates={kind: 0.5})
        for event, attributes in EventGenerator(seed=seed, config=config).next_batch(DRAWS):
            if attributes.get("anomaly_kind") == kind:
                out[f"purchase ({kind})"] = {"data": json.dumps(event, indent=1), "attributes": attributes}
                break
    return out
