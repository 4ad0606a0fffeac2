"""kill -9 with unacknowledged messages under --data-dir, restart: everything is redelivered."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.testing.pubsub import pull
from tests.fixtures.pubsub import start_emulator, stop_emulator

pytestmark = [
    pytest.mark.integration,
    pytest.mark.local_only("the emulator's --data-dir store (GCP keeps messages itself)"),
]


def test_kill_9_then_restart_redelivers_unacked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_emulator(tmp_path, topology="none", data_dir=data)
    try:
        topic, sub = first.topic_path("durable"), first.subscription_path("durable-sub")
        ordered = first.subscription_path("durable-ordered")
        first.publisher().create_topic(name=topic)
        first.subscriber().create_subscription(name=sub, topic=topic)
        first.subscriber().create_subscription(
            request={"name": ordered, "topic": topic, "enable_message_ordering": True}
        )
        from google.cloud import pubsub_v1

        publisher = first.publisher(publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
        futures = [publisher.publish(topic, f"m{i}".encode(), i=str(i), ordering_key="k") for i in range(50)]
        for f in futures:
            f.result(timeout=20)
        client = first.subscriber()
        acked = client.pull(subscription=sub, max_messages=10, timeout=10).received_messages
        client.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in acked])
        leased = client.pull(subscription=sub, max_messages=5, timeout=10).received_messages  # delivered, never acked
        assert len(acked) == 10 and len(leased) == 5
        acked_data = {m.message.data for m in acked}
    finally:
        assert stop_emulator(first, kill=True) == -9

    second = start_emulator(tmp_path, topology="none", data_dir=data)
    try:
        client = second.subscriber()
        got = pull(client, sub, 40, timeout=20, ack=False)
        assert sorted(m.message.data for m in got) == sorted(
            f"m{i}".encode() for i in range(50) if f"m{i}".encode() not in acked_data
        )
        assert all(m.message.attributes["i"] == m.message.data.decode()[1:] for m in got)
        ordered_got = client.pull(subscription=ordered, max_messages=100, timeout=5).received_messages
        assert [m.message.data for m in ordered_got] == [f"m{i}".encode() for i in range(len(ordered_got))]
        assert all(m.message.ordering_key == "k" for m in ordered_got)
        assert stop_emulator(second) == 0  # SIGTERM: clean exit
    finally:
        stop_emulator(second)
