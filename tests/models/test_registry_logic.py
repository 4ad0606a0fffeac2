"""Fast tests of the registry's pure parts: the gate and the history replay behind rollback."""

from __future__ import annotations

import pytest

from models.registry import HistoryEvent, RegistryError, champion_stack, gate


def ev(seq: int, action: str, version: str) -> HistoryEvent:
    return HistoryEvent(seq, float(seq), action, version, None, "")


def test_gate_promotes_only_a_better_challenger() -> None:
    assert gate({"f1": 0.5}, None, "f1")[0] is True
    assert gate({"f1": 0.9}, {"f1": 0.8}, "f1")[0] is True
    ok, reason = gate({"f1": 0.8}, {"f1": 0.8}, "f1")
    assert ok is False and "does not beat" in reason
    assert gate({"f1": 0.85}, {"f1": 0.8}, "f1", min_delta=0.1)[0] is False
    ok, reason = gate({"f1": 0.5}, {"f1": 1.0}, "f1", min_delta=-1)  # a negative delta: a worse one passes, said so
    assert ok is True and reason.endswith("champion f1=1.0000 -1")
    with pytest.raises(RegistryError, match="promotion metric 'auc'"):
        gate({"f1": 0.5}, None, "auc")


def test_champion_stack_replays_promotions_and_rollbacks() -> None:
    events = [ev(1, "bootstrap", "1"), ev(2, "promote", "2"), ev(3, "promote", "4"), ev(4, "rollback", "2")]
    assert champion_stack(events) == ["1", "2"]
    assert champion_stack([*events, ev(5, "rollback", "1")]) == ["1"]
    assert champion_stack([*events, ev(5, "manual", "3")]) == ["1", "2", "3"]
