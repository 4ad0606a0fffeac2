"""Publishing into the real emulator (tests/fixtures/pubsub.py), through the sink and through `hyp loadgen`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loadgen.config import GeneratorConfig
from loadgen.generator import EventGenerator
from loadgen.sinks import SinkError
from loadgen.sinks.pubsub import PubSubSink
from services.common.events import parse_event
from tests.fixtures.pubsub import REPO, unique

pytestmark = pytest.mark.integration


@pytest.fixture
def topic_and_subscription(pubsub_emulator):
    topic = pubsub_emulator.topic_path(unique("loadgen"))
    sub = pubsub_emulator.subscription_path(unique("loadgen-sub"))
    publisher, subscriber = pubsub_emulator.publisher(), pubsub_emulator.subscriber()
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=sub, topic=topic)
    yield topic, sub, subscriber
    subscriber.delete_subscription(subscription=sub)
    publisher.delete_topic(topic=topic)


def pull_all(subscriber, sub, expected):
    got = []
    for _ in range(200):  # bounded: up to 200 pulls
        if len(got) >= expected:
            break
        response = subscriber.pull(subscription=sub, max_messages=1000, timeout=10)
        if response.received_messages:
            got.extend(response.received_messages)
            subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in response.received_messages])
    return got


def test_sink_publishes_every_event_with_its_attributes(pubsub_emulator, topic_and_subscription):
    topic, sub, subscriber = topic_and_subscription
    gen = EventGenerator(4, GeneratorConfig(anomaly_rates={"burst": 0.1, "value_spike": 0.1}))
    sink = PubSubSink(topic, pubsub_emulator.host, gen.config.n_users, gen.run_id, max_in_flight=2)
    batch = gen.next_columns(2500)
    sink.send(batch, 1_800_000_000.0)
    sink.close()
    assert sink.published == 2500
    got = pull_all(subscriber, sub, 2500)
    assert len(got) == 2500
    kinds = {}
    for m in got:
        event = parse_event(m.message.data)
        attrs = dict(m.message.attributes)
        assert attrs["event"] == event["event"] and attrs["run_id"] == gen.run_id
        assert attrs["sent_at"] == "1800000000000"
        kinds[attrs["anomaly_kind"]] = kinds.get(attrs["anomaly_kind"], 0) + 1
    assert kinds.get("burst") and kinds.get("value_spike")


def test_missing_topic_is_a_one_line_error(pubsub_emulator):
    gen = EventGenerator(1)
    sink = PubSubSink(pubsub_emulator.topic_path(unique("absent")), pubsub_emulator.host, 20_000, "r")
    with pytest.raises(SinkError, match="does not exist"):  # at the send (a small one is a blocking call) or close
        sink.send(gen.next_columns(10), 0.0)
        sink.close()


def test_cli_publishes_count_events_and_reports(pubsub_emulator, topic_and_subscription):
    topic, sub, subscriber = topic_and_subscription
    args = ["--to", "pubsub", "--topic", topic, "--count", "1200", "--rate", "2000", "--seed", "9", "--no-progress"]
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "loadgen", *args],
        cwd=REPO, env=pubsub_emulator.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sent"] == 1200 and report["target_rate"] == 2000.0
    assert len(pull_all(subscriber, sub, 1200)) == 1200
