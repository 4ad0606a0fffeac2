"""`hyp loadgen` options, scenario files and the send loop: one-line errors, counts, determinism, clean stop."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest

from loadgen.__main__ import SIM_RATE, build, main, parser
from loadgen.config import GeneratorConfig
from loadgen.generator import EventGenerator
from loadgen.runner import RunPhase, run
from loadgen.scenario import SCENARIO_DIR, load


class ListSink:
    def __init__(self):
        self.batches, self.closed = [], False

    def send(self, batch, now):
        self.batches.append(len(batch))

    def close(self):
        self.closed = True


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--rate", "-1"], "--rate: must be > 0"),
        (["--count", "0"], "--count: must be > 0"),
        (["--duration", "soon"], "--duration: not a duration"),
        (["--anomaly-rate", "nope=0.1"], "--anomaly-rate: unknown anomaly kind 'nope'"),
        (["--anomaly-rate", "burst=lots"], "--anomaly-rate: burst: not a number"),
        (["--anomaly-rate", "burst=0.9"], "--anomaly-rate: rates add up to"),
        (["--mix", "checkout=1"], "--mix: unknown event type 'checkout'"),
        (["--drift", "price_factor=0"], "--drift.price_factor"),
        (["--drift", "colour=1"], "--drift.colour"),
        (["--start", "yesterday"], "--start: not an ISO 8601"),
        (["--scenario", "no-such-scenario"], "--scenario: no file"),
        (["--to", "http"], "--url: required"),
        (["--to", "kafka"], "--bootstrap: required"),
    ],
)
def test_bad_options_get_one_line_naming_the_field(args, field, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("HYP_LOADGEN_URL", raising=False)
    monkeypatch.delenv("HYP_KAFKA_BOOTSTRAP", raising=False)
    base = [] if "--to" in args else ["--to", "jsonl", "--out", str(tmp_path / "x.jsonl")]
    assert main([*base, *args, "--count", "1"] if "--count" not in args else [*base, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hyp loadgen: ") and field in err, err
    assert err.count("\n") == 1


def _scenario(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("phases: []", "phases: List should have at least 1 item"),
        ("phases:\n  - rate: 10", "phases.0: Value error, give exactly one of duration or count"[:8]),
        ("phases:\n  - {count: 5, duration: 3}", "give exactly one of duration or count"),
        ("phases:\n  - {count: 5, speed: 3}", "phases.0.speed: Extra inputs are not permitted"),
        ("phases:\n  - {duration: 5 fortnights}", "phases.0.duration: "),
        ("phases:\n  - {count: 5, rate: -2}", "phases.0.rate: "),
        ("phases:\n  - {count: 5, drift: {price_factor: x}}", "phases.0.drift.price_factor"),
        ("phases:\n  - {count: 5, anomaly_rates: {meteor: 0.1}}", "phases.0.anomaly_rates: unknown anomaly kind"),
        ("phases:\n  - {count: 5, mix: {view_item: -1}}", "phases.0.mix"),
        ("phases: [\n", "not valid YAML"),
        ("- 1\n- 2", "expected a mapping"),
    ],
)
def test_bad_scenario_files_get_one_line_naming_the_field(text, field, tmp_path, capsys):
    path = _scenario(tmp_path, text)
    assert main(["--to", "jsonl", "--out", str(tmp_path / "x.jsonl"), "--scenario", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and path in err and field in err, err


def test_shipped_scenarios_load():
    names = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
    assert {"steady", "drift", "spike"} <= set(names)
    drift = load("drift")
    assert any(p.ramp for p in drift.phases) and drift.phases[-1].drift.price_factor > 1


def test_jsonl_run_same_seed_same_file(tmp_path, capsys):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.jsonl"
        args = ["--to", "jsonl", "--out", str(out), "--count", "3000", "--max", "--seed", "7", "--clock", "simulated"]
        assert main([*args, "--run-id", "r", "--no-progress"]) == 0
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert report["sent"] == 3000
        outs.append([json.loads(line) for line in out.read_text().splitlines()])
    strip = [[{"data": x["data"], "kind": x["attributes"]["anomaly_kind"]} for x in o] for o in outs]
    assert len(strip[0]) == 3000 and strip[0] == strip[1]


def test_scenario_phases_by_count_change_mix_and_drift(tmp_path, capsys):
    path = _scenario(
        tmp_path,
        "phases:\n  - {count: 1000, mix: {view_item: 1}}\n"
        "  - {count: 500, mix: {purchase: 1}, drift: {price_factor: 3}, anomaly_rates: {value_spike: 0.2}}\n",
    )
    out = tmp_path / "s.jsonl"
    assert main(["--to", "jsonl", "--out", str(out), "--scenario", path, "--max", "--no-progress"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1500
    assert {r["data"]["event"] for r in rows[:1000]} == {"view_item"}
    assert {r["data"]["event"] for r in rows[1000:]} == {"purchase"}
    spikes = sum(r["attributes"]["anomaly_kind"] == "value_spike" for r in rows[1000:])
    assert 50 < spikes < 150


def test_rate_is_never_exceeded_and_count_is_exact():
    sink = ListSink()
    report = run(EventGenerator(1), sink, [RunPhase(GeneratorConfig(), rate=400.0, count=200)])
    assert report.sent == sum(sink.batches) == 200 and sink.closed
    # open loop: event k is not sent before k / rate seconds (the last one at ~0.5 s)
    assert report.elapsed_s >= 199 / 400
    assert report.achieved_rate <= 400 * 1.05


def test_stop_ends_the_run_cleanly():
    sink, stop = ListSink(), threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    report = run(EventGenerator(1), sink, [RunPhase(GeneratorConfig(), rate=100.0)], stop=stop)
    timer.join()
    assert report.stopped and sink.closed and 0 < report.sent <= 100


def test_ramp_moves_drift_during_the_phase():
    from loadgen.config import Drift

    config = GeneratorConfig(mix={"purchase": 1}, anomaly_rates={}, drift=Drift(price_factor=3.0))
    gen = EventGenerator(1, config)
    seen = []

    class Recorder(ListSink):
        def send(self, batch, now):
            seen.append(gen.config.drift.price_factor)

    run(gen, Recorder(), [RunPhase(config, rate=400.0, duration=1.2, ramp_from=Drift())])
    assert seen[0] == 1.0
    assert 1.0 < max(seen) <= 3.0 and seen == sorted(seen)


def _stamps(path) -> list[datetime]:
    lines = path.read_text().splitlines()
    return [datetime.fromisoformat(json.loads(line)["data"]["event_datetime"]) for line in lines]


def test_file_sinks_default_to_the_simulated_clock_spread_at_the_nominal_rate(tmp_path, capsys):
    out = tmp_path / "train.jsonl"
    assert main(["--to", "jsonl", "--out", str(out), "--count", "2000", "--max", "--seed", "3", "--no-progress"]) == 0
    stamps = _stamps(out)
    assert len(stamps) == 2000 and stamps == sorted(stamps)
    assert stamps[0] >= GeneratorConfig().start  # the simulated clock's documented start, not today
    span = (stamps[-1] - stamps[0]).total_seconds()
    # Poisson arrivals at SIM_RATE events per simulated second: 2000 events span ~20 s (sd ~0.45 s)
    assert 2000 / SIM_RATE * 0.85 <= span <= 2000 / SIM_RATE * 1.15
    assert len(set(stamps)) > 1500  # millisecond stamps: a few arrivals share one; the real clock gives 1 or 2


def test_file_sinks_keep_the_real_clock_when_asked(tmp_path, capsys):
    out = tmp_path / "live.jsonl"
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    args = ["--to", "jsonl", "--out", str(out), "--count", "500", "--max", "--clock", "real", "--no-progress"]
    assert main(args) == 0
    after = datetime.now(UTC).replace(tzinfo=None)
    assert all(before <= s <= after for s in _stamps(out))


@pytest.mark.parametrize(("to", "clock"), [("http", "real"), ("jsonl", "simulated"), ("parquet", "simulated")])
def test_default_clock_by_sink(to, clock, tmp_path):
    args = parser().parse_args(["--to", to, "--url", "http://127.0.0.1:9/json", "--out", str(tmp_path / "o")])
    generator, sink, _, _ = build(args)
    sink.close()
    assert generator.config.clock == clock
