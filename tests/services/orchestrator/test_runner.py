"""Runner behaviour with the models seam stubbed (fast); the real models package runs in test_integration.py."""

from __future__ import annotations

import threading

from services.orchestrator.runner import Orchestrator
from tests.services.orchestrator.helpers import StubOps


def _run(orch: Orchestrator, kind: str = "manual") -> dict:
    record, created = orch.trigger({"kind": kind}, orch.default_params())
    assert created
    assert orch.wait(120)
    return orch.history.get(record["id"])


def test_a_better_challenger_is_promoted_and_every_step_recorded(settings_for, warehouse_with_purchases):
    ops = StubOps(champion="1", champion_f1=0.1)
    orch = Orchestrator(settings_for(), ops)
    record = _run(orch)
    assert record["status"] == "succeeded", record
    assert record["decision"] == "promote"
    assert ops.version == record["promoted_version"] == "2"
    assert [s["name"] for s in record["steps"]] == [
        "window",
        "train",
        "evaluate",
        "gate",
        "register",
        "promote",
        "confirm",
    ]
    assert all(s["status"] == "succeeded" and s["seconds"] >= 0 for s in record["steps"])
    window = record["steps"][0]["inputs"]
    assert window["train_rows"] + window["holdout_rows"] == window["rows"] == 1000
    assert record["consumers"]["endpoint"] == {"status": "skipped", "reason": "HYP_ORCH_ENDPOINT_URL is not set"}
    assert ops.tags["hyp.window_end"] == window["window_end"]
    assert record["mlflow_run_id"]


def test_a_worse_challenger_is_rejected_and_the_champion_kept(settings_for, warehouse_with_purchases):
    ops = StubOps(champion="1", champion_f1=1.0)
    orch = Orchestrator(settings_for(), ops)
    record = _run(orch)
    assert record["status"] == "succeeded"
    assert record["decision"] == "keep"
    assert "does not beat" in record["reason"]
    assert ops.version == "1" and ops.registered == []
    assert "register" not in [s["name"] for s in record["steps"]]


def test_a_failing_step_is_retried_then_fails_the_run_without_touching_the_champion(
    settings_for, warehouse_with_purchases
):
    ops = StubOps(champion="1", champion_f1=0.1)
    ops.fail_on = {"register"}
    orch = Orchestrator(settings_for(step_retries=2), ops)
    record = _run(orch)
    assert record["status"] == "failed"
    assert "the champion was not changed" in record["reason"]
    step = record["steps"][-1]
    assert step["name"] == "register" and step["status"] == "failed" and step["attempts"] == 3
    assert ops.calls.count("register") == 3 and "promote" not in ops.calls
    assert ops.version == "1"


def test_two_triggers_at_once_make_one_run(settings_for, warehouse_with_purchases):
    ops = StubOps(champion="1", champion_f1=0.1)
    ops.release.clear()  # hold the first run inside its train step
    orch = Orchestrator(settings_for(), ops)
    results: list[tuple[dict, bool]] = []
    barrier = threading.Barrier(2)

    def fire(kind: str) -> None:
        barrier.wait()
        results.append(orch.trigger({"kind": kind}, orch.default_params()))

    threads = [threading.Thread(target=fire, args=(k,)) for k in ("manual", "drift")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert ops.entered.wait(120)
    ops.release.set()
    assert orch.wait(120)
    assert sorted(created for _, created in results) == [False, True]
    assert results[0][0]["id"] == results[1][0]["id"]
    runs = orch.history.list()
    assert len(runs) == 1 and len(runs[0]["coalesced_triggers"]) == 1
    assert ops.calls.count("promote") == 1


def test_too_little_data_fails_the_window_step(settings_for):
    ops = StubOps()
    orch = Orchestrator(settings_for(step_retries=0), ops)
    record = _run(orch)
    assert record["status"] == "failed"
    assert "fewer than HYP_ORCH_MIN_ROWS" in record["reason"]
    assert ops.calls == []


def test_a_restart_marks_the_run_in_progress_interrupted(settings_for):
    settings = settings_for()
    first = Orchestrator(settings, StubOps())
    left = first.history.create({"kind": "drift"}, {})  # as if the process died mid-run
    second = Orchestrator(settings, StubOps())
    assert second.interrupted_on_start == [left["id"]]
    assert second.history.get(left["id"])["status"] == "interrupted"
