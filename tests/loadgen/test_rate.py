"""The paced send loop: it holds its rate, sends one batch per tick (it sleeps between), and stops at once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from loadgen.config import GeneratorConfig
from loadgen.generator import EventGenerator
from loadgen.runner import TICK_S, RunPhase, run
from tests.fixtures.pubsub import REPO, unique


class CountingSink:
    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.closed = False

    def send(self, batch, now: float) -> None:
        self.sizes.append(len(batch))

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("rate", [200.0, 2000.0])
def test_paced_run_holds_its_rate_in_one_batch_per_tick(rate):
    sink = CountingSink()
    seconds = 3.0
    report = run(EventGenerator(3), sink, [RunPhase(GeneratorConfig(), rate=rate, duration=seconds)])
    expected = rate * seconds
    assert sum(sink.sizes) == report.sent
    assert abs(report.sent - expected) <= 0.02 * expected, report.as_dict()
    assert abs(report.achieved_rate - rate) <= 0.03 * rate, report.as_dict()
    # it sleeps between turns: about one send per tick, not one per event
    assert len(sink.sizes) <= seconds / TICK_S * 1.2 + 2, len(sink.sizes)
    assert report.max_lag_s < 1.0


def test_a_slow_rate_still_sends_each_event_on_time():
    sink = CountingSink()
    report = run(EventGenerator(3), sink, [RunPhase(GeneratorConfig(), rate=5.0, count=6)])
    assert report.sent == 6 and sink.sizes == [1] * 6
    assert report.elapsed_s >= 5 / 5.0


@pytest.mark.integration
def test_hyp_loadgen_stops_promptly_on_sigterm(pubsub_emulator):
    topic = pubsub_emulator.topic_path(unique("loadgen-rate"))
    sub = pubsub_emulator.subscription_path(unique("loadgen-rate-sub"))
    pubsub_emulator.publisher().create_topic(name=topic)
    subscriber = pubsub_emulator.subscriber()
    subscriber.create_subscription(name=sub, topic=topic)
    args = [sys.executable, "-m", "services.cli", "loadgen", "--topic", topic, "--emulator-host", pubsub_emulator.host]
    proc = subprocess.Popen(
        [*args, "--rate", "2000", "--no-progress"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        got = 0
        for _ in range(30):  # bounded: until it is sending (its signal handlers are in place by then)
            got += len(subscriber.pull(subscription=sub, max_messages=100, timeout=10).received_messages)
            if got or proc.poll() is not None:
                break
        assert got and proc.poll() is None, "loadgen did not start sending"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)  # a stop ends the sleep between ticks: well under this
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["stopped"] and report["sent"] > 0
