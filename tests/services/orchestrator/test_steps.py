"""The run's steps one by one, each called with its typed input: a real warehouse in tmp_path, the real
models package and an MLflow registry in a sqlite file, a real Prometheus page for the confirm step."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from services.common.processes import free_port
from services.orchestrator import steps
from services.orchestrator.modelops import ModelsPackageOps
from services.orchestrator.params import ResolvedParams
from services.orchestrator.runner import Orchestrator
from tests.services.orchestrator.helpers import StubOps, synthetic_purchases


def _params(**overrides) -> ResolvedParams:
    params: ResolvedParams = {
        "candidates": ["envelope"],
        "window_minutes": 30.0,
        "max_rows": 5000,
        "holdout_fraction": 0.3,
        "since": None,
        "promote": True,
        "reason": None,
    }
    params.update(overrides)  # type: ignore[typeddict-item]
    return params


# ---- window ---------------------------------------------------------------------------------------
def test_window_holds_out_the_newest_rows(warehouse_with_purchases):
    win = steps.load_window(warehouse_with_purchases, _params(), min_rows=100)
    assert win.problem is None
    assert (len(win.train), len(win.holdout)) == (700, 300)
    assert win.train["event_datetime"].max() < win.holdout["event_datetime"].min()
    summary = win.summary
    assert summary["rows"] == 1000 and summary["train_rows"] == 700 and summary["holdout_rows"] == 300
    assert summary["holdout_anomalies"] == int(win.holdout["anomaly"].sum()) > 0
    assert summary["window_start"] == "2026-11-22 08:00:00"
    assert summary["holdout_start"] == str(win.holdout["event_datetime"].min())
    assert win.entry() == {"inputs": summary} and win.record() == {}


def test_window_since_and_max_rows_bound_it(warehouse_with_purchases):
    win = steps.load_window(warehouse_with_purchases, _params(since="2026-11-22 08:01:00", max_rows=400), min_rows=100)
    assert win.problem is None
    assert win.summary["rows"] == 400 and win.summary["since"] == "2026-11-22 08:01:00"
    assert win.train["event_datetime"].min() >= datetime(2026, 11, 22, 8, 1)


def test_a_window_too_small_or_without_both_labels_is_a_problem(tmp_path):
    empty = steps.load_window(tmp_path / "none", _params(), min_rows=100)
    assert empty.problem == "training window has 0 purchases, fewer than HYP_ORCH_MIN_ROWS=100"
    assert empty.summary["rows"] == 0 and empty.summary["window_start"] is None
    unlabelled = tmp_path / "unlabelled"
    synthetic_purchases(unlabelled, 500, start=datetime(2026, 11, 22, 8), anomaly_rate=0.0)
    win = steps.load_window(unlabelled, _params(), min_rows=100)
    assert win.problem == "held-out set needs both labelled anomalies and normal purchases"
    assert win.summary["holdout_anomalies"] == 0


def test_a_stop_ends_the_wait_for_rows(tmp_path):
    stop = threading.Event()
    found: list[steps.Window] = []
    waiting = threading.Thread(
        target=lambda: found.append(steps.load_window(tmp_path, _params(), min_rows=100, wait_s=3600, stop=stop))
    )
    waiting.start()
    stop.set()
    waiting.join(30)  # without the stop it would wait an hour for rows
    assert not waiting.is_alive() and found[0].problem and "fewer than" in found[0].problem


# ---- train, evaluate, gate, register, promote: the models package and a registry in sqlite ---------
@pytest.fixture
def models_ops(tmp_path, monkeypatch) -> ModelsPackageOps:
    """The real models seam on a registry of its own (artifacts in tmp_path, nothing in the working tree)."""
    from mlflow import MlflowClient

    from models.settings import get_settings
    from tests.services.orchestrator.conftest import make_settings

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment(get_settings().experiment, artifact_location=str(tmp_path / "artifacts"))
    return ModelsPackageOps(make_settings(tmp_path, mlflow_tracking_uri=uri, model_name="steps-test"))


def test_model_steps_one_by_one_on_the_models_package(warehouse_with_purchases, models_ops):
    ops = models_ops
    win = steps.load_window(warehouse_with_purchases, _params(), min_rows=100)

    trained = steps.train(ops, ["envelope"], win.train)
    assert list(trained.models) == ["envelope"] and trained.seconds["envelope"] >= 0
    assert trained.entry() == {"outputs": {"train_seconds": trained.seconds}}

    first = steps.evaluate(ops, trained.models, win.holdout)
    assert first.champion is None and first.champion_metrics is None and first.best == "envelope"
    assert 0 < first.scores["envelope"]["f1"] <= 1
    assert first.record() == {"champion_before": None}

    decision = steps.gate(ops, first)
    assert decision.promote and decision.reason.startswith("envelope: no champion yet")
    assert decision.record() == {"decision": "promote", "reason": decision.reason}
    held = steps.gate(ops, first, allow_promote=False)
    assert not held.promote and held.reason.endswith("not promoted: the run was asked not to promote")

    tags = steps.version_tags(win.summary, "run1", first.best)
    registered = steps.register(ops, trained.models["envelope"], win.holdout, tags)
    assert ops.champion_version() is None  # registering moves no alias
    assert ops.client.get_model_version("steps-test", registered.version).tags["hyp.window_end"] == str(
        win.summary["window_end"]
    )

    promoted = steps.promote(ops, registered.version, expected=first.champion)
    assert ops.champion_version() == registered.version
    assert promoted.entry() == {"outputs": {"from": None, "to": registered.version}}
    assert promoted.record()["promoted_version"] == registered.version
    with pytest.raises(ValueError, match="moved from None to"):
        steps.promote(ops, registered.version, expected=None)  # the run compared against another champion
    stop = threading.Event()
    stop.set()
    with pytest.raises(steps.Stopped):
        steps.promote(ops, registered.version, expected=registered.version, stop=stop)

    again = steps.evaluate(ops, trained.models, win.holdout)  # the champion now: the same model, loaded back
    assert again.champion == registered.version
    assert again.champion_metrics is not None
    assert again.champion_metrics["f1"] == pytest.approx(again.scores["envelope"]["f1"])
    assert not steps.gate(ops, again).promote  # no better than the champion


# ---- confirm: a consumer's Prometheus page --------------------------------------------------------
@pytest.fixture
def detector_page() -> Iterator[tuple[str, Gauge]]:
    """A Prometheus page reporting a model version the way the detector does."""
    with _page() as page:
        yield page


def test_confirm_waits_for_the_version_and_skips_what_is_not_configured(detector_page):
    url, gauge = detector_page
    gauge.labels("3").set(1)
    serving = steps.consumer_probes(None, "projects/p/locations/l/endpoints/1", url)
    done = steps.confirm(serving, "3", timeout_s=10)
    assert done.problem is None
    assert done.results["endpoint"] == {"status": "skipped", "reason": "HYP_ORCH_ENDPOINT_URL is not set"}
    assert done.results["detector"]["status"] == "confirmed" and done.results["detector"]["version"] == "3"
    assert done.record() == {"consumers": done.results} and done.entry() == {"outputs": done.results}

    late = steps.confirm(serving, "4", timeout_s=0.5)
    assert late.problem == "detector did not report version 4 within 0.5 s"
    assert late.results["detector"]["status"] == "timeout" and late.results["detector"]["version"] == "3"


@pytest.fixture
def second_detector_page() -> Iterator[tuple[str, Gauge]]:
    """A second worker's page (``hyp up --detector-workers 2``)."""
    with _page() as page:
        yield page


@contextmanager
def _page() -> Iterator[tuple[str, Gauge]]:
    from services.common import metric_names

    registry = CollectorRegistry()
    gauge = Gauge(metric_names.DETECTOR_MODEL_VERSION, "model version", [metric_names.MODEL_VERSION], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{port}/metrics", gauge
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.local_only("the orchestrator's probe of several detector workers' Prometheus pages")
def test_confirm_waits_for_every_detector_worker(detector_page, second_detector_page):
    (first, old), (second, new) = detector_page, second_detector_page
    old.labels("3").set(1)
    new.labels("4").set(1)
    serving = steps.consumer_probes(None, "projects/p/locations/l/endpoints/1", f"{first}, {second}")
    late = steps.confirm(serving, "4", timeout_s=0.5)  # one worker still scores with 3: not confirmed
    assert late.results["detector"]["status"] == "timeout"
    assert late.results["detector"]["version"] == f"mixed: {first}=3, {second}=4"

    def reload_later() -> None:  # the first worker's alias poll picks up version 4 a little later
        old.remove("3")
        old.labels("4").set(1)

    timer = threading.Timer(0.3, reload_later)
    timer.start()
    try:
        done = steps.confirm(serving, "4", timeout_s=10)
    finally:
        timer.join()
    assert done.problem is None and done.results["detector"]["status"] == "confirmed"


# ---- the runner records a step's problem with what the step saw ------------------------------------
def test_a_step_with_a_problem_fails_after_its_inputs_are_recorded(settings_for):
    orch = Orchestrator(settings_for(step_retries=1), StubOps())
    record, _ = orch.trigger({"kind": "manual"}, orch.default_params())
    assert orch.wait(120)
    saved = orch.history.get(record["id"])
    assert saved is not None and saved["status"] == "failed"
    [window] = saved["steps"]
    assert window["name"] == "window" and window["status"] == "failed" and window["attempts"] == 2
    assert window["inputs"]["rows"] == 0
    assert window["errors"] == ["ValueError: training window has 0 purchases, fewer than HYP_ORCH_MIN_ROWS=100"] * 2
    assert saved["reason"] == (
        "step window failed: ValueError: training window has 0 purchases, fewer than HYP_ORCH_MIN_ROWS=100;"
        " the champion was not changed"
    )
