"""The console's load-generator run against a real emulator: started with a scenario, its events arrive
on the events topic, it stops by itself at its duration (or when stopped), one run at a time, bad input
refused with the reason."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.common.processes import wait_for
from services.common.settings import EVENTS_TOPIC
from services.console.app import create_app
from services.testing.pubsub import pull, unique
from tests.services.console.conftest import console_settings

pytestmark = [pytest.mark.integration, pytest.mark.local_only("the console's load-generator runs")]


@pytest.fixture(scope="module")
def console(pubsub_emulator, tmp_path_factory):
    settings = console_settings(
        HYP_CONSOLE_PUBSUB_URL=pubsub_emulator.rest_url,
        PUBSUB_EMULATOR_HOST=pubsub_emulator.host,
        HYP_PROJECT=pubsub_emulator.project,
        HYP_WAREHOUSE_DIR=str(tmp_path_factory.mktemp("warehouse")),
    )
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        yield client


@pytest.fixture
def events(pubsub_emulator):
    """A subscription of our own on the events topic, filtered to one anomaly kind."""
    sub = pubsub_emulator.subscription_path(unique("console-scenario"))
    pubsub_emulator.subscriber().create_subscription(
        request={"name": sub, "topic": pubsub_emulator.topic_path(EVENTS_TOPIC), "filter": 'attributes.anomaly = "1"'}
    )
    return sub


def test_an_anomaly_scenario_runs_to_its_duration_and_its_events_arrive(console, pubsub_emulator, events):
    started = console.post(
        "/api/scenarios", json={"scenario": "anomaly", "anomaly_kind": "tax_mismatch", "rate": 100, "duration_s": 4}
    )
    assert started.status_code == 200, started.text
    assert started.json()["running"] is True
    assert "--anomaly-rate tax_mismatch=0.2" in started.json()["run"]["argv"]
    again = console.post("/api/scenarios", json={"scenario": "steady", "duration_s": 5})
    assert again.status_code == 409 and "in progress" in again.json()["error"]
    done = wait_for(lambda: (s := console.get("/api/scenarios").json())["running"] is False and s, 90, "the run to end")
    run = done["run"]
    assert run["exit_code"] == 0, run
    assert run["report"]["sent"] > 0 and run["progress"] == 1.0
    received = pull(pubsub_emulator.subscriber(), events, 5)
    assert {m.message.attributes["anomaly_kind"] for m in received} == {"tax_mismatch"}


def test_the_anomaly_scenario_injects_its_one_kind_only(monkeypatch):
    """The generator's default rates of the other kinds are turned off, so every injected anomaly is the chosen one."""
    from loadgen.__main__ import build, parser
    from services.console.scenarios import LoadRuns

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")  # the sink is built, never used
    argv = LoadRuns.argv("anomaly", 100, 4, "value_spike")
    _, _, phases, _ = build(parser().parse_args(argv[argv.index("loadgen") + 1 :]))
    rates = phases[0].config.anomaly_rates
    assert {kind for kind, rate in rates.items() if rate} == {"value_spike"} and rates["value_spike"] == 0.2


def test_a_run_is_stopped_from_the_page(console):
    started = console.post("/api/scenarios", json={"scenario": "steady", "rate": 20, "duration_s": 600})
    assert started.status_code == 200, started.text
    stopped = console.post("/api/scenarios/stop", json={}).json()
    assert stopped["running"] is False and stopped["run"]["stopped"] is True


def test_bad_input_is_refused_with_the_reason(console):
    kind = console.post("/api/scenarios", json={"scenario": "anomaly", "anomaly_kind": "nope"})
    assert kind.status_code == 422 and "anomaly_kind" in kind.json()["error"]
    scenario = console.post("/api/scenarios", json={"scenario": "chaos"})
    assert scenario.status_code == 422 and "body.scenario" in scenario.json()["error"]
    long = console.post("/api/scenarios", json={"duration_s": 86_400})
    assert long.status_code == 422 and "body.duration_s" in long.json()["error"]
