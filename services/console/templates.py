"""Publish templates: one message of each event type the stack carries, and one per injected anomaly
kind, drawn from the load generator (the same events and attributes `hyp loadgen` publishes)."""

from __future__ import annotations

from typing import Any

DRAWS = 600  # events rendered at once: about 200 purchases, each kind at 1/12 of them (a kind missed is drawn alone)


def templates(seed: int | None = None) -> dict[str, dict[str, Any]]:
    """``{name: {"data": JSON text, "attributes": {...}}}``: ``view_item``, ``add_to_cart``, ``purchase``
    (normal) and ``purchase (<kind>)`` for each anomaly kind, with timestamps of now."""
    import json

    from loadgen.config import ANOMALY_KINDS, EVENT_TYPES, GeneratorConfig
    from loadgen.generator import EventGenerator

    rates = {kind: 0.5 / len(ANOMALY_KINDS) for kind in ANOMALY_KINDS}  # the most the generator allows
    config = GeneratorConfig(mix={t: 1.0 for t in EVENT_TYPES}, anomaly_rates=rates)
    found: dict[str, dict[str, Any]] = {}
    for event, attributes in EventGenerator(seed=seed, config=config).next_batch(DRAWS):
        kind = attributes.get("anomaly_kind")
        name = f"{event['event']} ({kind})" if kind else event["event"]
        found.setdefault(name, {"data": json.dumps(event, indent=1), "attributes": attributes})
    for kind in ANOMALY_KINDS:
        if f"purchase ({kind})" not in found:  # rare: a generator of that kind alone
            alone = GeneratorConfig(mix={"purchase": 1.0}, anomaly_rates={kind: 0.5})
            for event, attributes in EventGenerator(seed=seed, config=alone).next_batch(DRAWS):
                if attributes.get("anomaly_kind") == kind:
                    found[f"purchase ({kind})"] = {"data": json.dumps(event, indent=1), "attributes": attributes}
                    break
    order = [*EVENT_TYPES, *(f"purchase ({k})" for k in ANOMALY_KINDS)]
    return {name: found[name] for name in order if name in found}
