"""A backlog with holes punched by acks survives kill -9 and restart (streamed replay, the unacked bitmap).

Through google-cloud-pubsub against ``hyp pubsub --data-dir`` as a real process: nothing unacked is lost,
nothing acked comes back, a filter still holds, ordering keys stay in order, and dead-lettering's
delivery counts go on across restarts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from google.cloud import pubsub_v1

from services.testing.pubsub import EmulatorProcess, pull
from tests.fixtures.pubsub import start_emulator, stop_emulator

pytestmark = [
    pytest.mark.integration,
    pytest.mark.local_only("the emulator's --data-dir store (GCP keeps messages itself)"),
]

N = 3000


def _restart(tmp_path: Path, data: Path, emulator: EmulatorProcess) -> EmulatorProcess:
    assert stop_emulator(emulator, kill=True) == -9
    return start_emulator(tmp_path, topology="none", data_dir=data)


def _publish(emulator: EmulatorProcess, topic: str, n: int, prefix: str = "m", **kwargs: str) -> None:
    publisher: Any = emulator.publisher(  # Any: attributes go in as **kwargs, which the stubs type as options
        batch_settings=pubsub_v1.types.BatchSettings(max_messages=500),
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
    )
    futures = [
        publisher.publish(topic, f"{prefix}{i}".encode(), even=str(i % 2 == 0).lower(), **kwargs) for i in range(n)
    ]
    for f in futures:
        f.result(timeout=60)


def test_a_backlog_with_ack_holes_survives_two_kill_9s(tmp_path: Path) -> None:
    data = tmp_path / "data"
    emulator = start_emulator(tmp_path, topology="none", data_dir=data)
    try:
        topic = emulator.topic_path("backlog")
        sub, evens = emulator.subscription_path("backlog-sub"), emulator.subscription_path("backlog-even")
        emulator.publisher().create_topic(name=topic)
        client = emulator.subscriber()
        client.create_subscription(name=sub, topic=topic)
        client.create_subscription(request={"name": evens, "topic": topic, "filter": 'attributes.even = "true"'})
        _publish(emulator, topic, N)
        first = pull(client, sub, 1200, timeout=30, ack=False)
        holes = {m.message.data for i, m in enumerate(first) if i % 3 == 0}  # every third acked: 400 holes
        client.acknowledge(subscription=sub, ack_ids=[m.ack_id for i, m in enumerate(first) if i % 3 == 0])
        even_acked = pull(client, evens, 100, timeout=30)  # acked (pull's default)
        assert all(m.message.attributes["even"] == "true" for m in even_acked)

        emulator = _restart(tmp_path, data, emulator)
        client = emulator.subscriber()
        # the 800 delivered-not-acked (leases do not survive) and the 1800 never delivered: all of them, once
        again = pull(client, sub, N - len(holes), timeout=60, ack=False)
        assert len(again) == N - len(holes)
        assert {m.message.data for m in again} == {f"m{i}".encode() for i in range(N)} - holes
        later_holes = {m.message.data for m in again[:1000]}
        client.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in again[:1000]])
        assert not client.pull(subscription=sub, max_messages=10, timeout=5).received_messages  # all leased
        evens_left = pull(client, evens, N // 2, timeout=60, ack=False)
        assert {m.message.data for m in evens_left} == {f"m{i}".encode() for i in range(0, N, 2)} - {
            m.message.data for m in even_acked
        }

        emulator = _restart(tmp_path, data, emulator)  # the log was clean: read in place this time, no rewrite
        client = emulator.subscriber()
        last = pull(client, sub, N, timeout=20)
        assert {m.message.data for m in last} == {f"m{i}".encode() for i in range(N)} - holes - later_holes
        assert len(last) == N - len(holes) - len(later_holes)
        more = pull(client, evens, N, timeout=20)
        assert len(more) == N // 2 - len(even_acked)
        state = httpx.get(f"{emulator.rest_url}/admin/state", timeout=10).json()
        assert {s["name"]: s["backlog"] for s in state["subscriptions"]} == {sub: 0, evens: 0}
    finally:
        stop_emulator(emulator)


def test_ordering_and_dead_letter_counts_go_on_after_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    emulator = start_emulator(tmp_path, topology="none", data_dir=data)
    try:
        topic, poison_topic, dead = (emulator.topic_path(t) for t in ("ordered", "poison", "poison-dead"))
        ordered, poison = emulator.subscription_path("ordered-sub"), emulator.subscription_path("poison-sub")
        dead_sub = emulator.subscription_path("poison-dead-sub")
        publisher = emulator.publisher()
        for t in (topic, poison_topic, dead):
            publisher.create_topic(name=t)
        client = emulator.subscriber()
        client.create_subscription(request={"name": ordered, "topic": topic, "enable_message_ordering": True})
        client.create_subscription(
            request={
                "name": poison,
                "topic": poison_topic,
                "dead_letter_policy": {"dead_letter_topic": dead, "max_delivery_attempts": 5},
            }
        )
        client.create_subscription(name=dead_sub, topic=dead)
        _publish(emulator, topic, 300, prefix="a", ordering_key="a")
        _publish(emulator, topic, 100, prefix="b", ordering_key="b")
        _publish(emulator, poison_topic, 1, prefix="poison")
        first = pull(client, ordered, 400, timeout=30, ack=False)
        assert [m.message.data for m in first if m.message.ordering_key == "a"] == [b"a%d" % i for i in range(300)]
        done = [m for m in first if m.message.data in {b"a%d" % i for i in range(20)} | {b"b0", b"b1"}]
        client.acknowledge(subscription=ordered, ack_ids=[m.ack_id for m in done])
        for attempt in (1, 2):
            got = client.pull(subscription=poison, max_messages=1, timeout=10).received_messages
            assert [m.delivery_attempt for m in got] == [attempt]
            client.modify_ack_deadline(subscription=poison, ack_ids=[got[0].ack_id], ack_deadline_seconds=0)

        emulator = _restart(tmp_path, data, emulator)
        client = emulator.subscriber()
        again = pull(client, ordered, 378, timeout=60)
        assert [m.message.data for m in again if m.message.ordering_key == "a"] == [b"a%d" % i for i in range(20, 300)]
        assert [m.message.data for m in again if m.message.ordering_key == "b"] == [b"b%d" % i for i in range(2, 100)]
        for attempt in (3, 4, 5):  # the count goes on from before the kill
            got = client.pull(subscription=poison, max_messages=1, timeout=10).received_messages
            assert [m.delivery_attempt for m in got] == [attempt]
            client.modify_ack_deadline(subscription=poison, ack_ids=[got[0].ack_id], ack_deadline_seconds=0)
        dead_letters = pull(client, dead_sub, 1, timeout=20)
        assert [m.message.data for m in dead_letters] == [b"poison0"]
        assert dead_letters[0].message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
        assert not client.pull(subscription=poison, max_messages=1, timeout=3).received_messages
    finally:
        stop_emulator(emulator)
