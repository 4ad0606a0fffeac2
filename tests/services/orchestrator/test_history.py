from services.orchestrator.history import RunHistory


def test_runs_survive_a_restart_and_running_ones_are_marked_interrupted(tmp_path):
    path = tmp_path / "runs.sqlite"
    history = RunHistory(path)
    done = history.create({"kind": "manual"}, {"candidates": ["kmeans"]})
    done["status"] = "succeeded"
    history.save(done)
    left = history.create({"kind": "drift"}, {})

    reopened = RunHistory(path)
    assert reopened.mark_interrupted() == [left["id"]]
    assert reopened.get(left["id"])["status"] == "interrupted"
    assert "not changed" in reopened.get(left["id"])["reason"]
    assert reopened.get(done["id"])["status"] == "succeeded"
    assert [r["id"] for r in reopened.list()] == [left["id"], done["id"]]
    assert reopened.get("nope") is None
