"""The processor's dead-letter publisher makes its Pub/Sub client on the first dead letter, not at start."""

from __future__ import annotations

import asyncio

import pytest

from services.common.processes import wait_for
from services.processor.deadletter import REASON_ATTRIBUTE, SOURCE_ATTRIBUTE, DeadLetter
from tests.fixtures.pubsub import unique

pytestmark = [pytest.mark.integration, pytest.mark.local_only("the processor's own dead-letter publisher")]


def test_client_made_on_the_first_dead_letter_then_kept(pubsub_emulator):
    publisher, subscriber = pubsub_emulator.publisher(), pubsub_emulator.subscriber()
    topic, sub = pubsub_emulator.topic_path(unique("dl")), pubsub_emulator.subscription_path(unique("dl-pull"))
    publisher.create_topic(name=topic)
    subscriber.create_subscription(request={"name": sub, "topic": topic})
    dead = DeadLetter(pubsub_emulator.host, topic)
    assert dead.client is None  # nothing made at start: a stack of good events never pays for the client

    async def twice() -> list[str]:
        first = await dead.publish(b"{not json", {"run_id": "r1"}, "bad JSON")
        made = dead.client
        second = await dead.publish(b"{}", {}, "no event_type")
        assert dead.client is made  # one client for every later dead letter
        return [first, second]

    try:
        ids = asyncio.run(twice())
    finally:
        dead.close()
    by_id: dict = {}

    def both_pulled() -> bool:  # a pull may answer with fewer messages than are there
        got = subscriber.pull(request={"subscription": sub, "max_messages": 10}, timeout=10).received_messages
        by_id.update((m.message.message_id, m.message) for m in got)
        return set(by_id) >= set(ids)

    wait_for(both_pulled, 30, "both dead letters on the topic")
    assert set(by_id) == set(ids)
    assert by_id[ids[0]].data == b"{not json"
    assert by_id[ids[0]].attributes[REASON_ATTRIBUTE] == "bad JSON"
    assert by_id[ids[0]].attributes[SOURCE_ATTRIBUTE] == "processor"
    assert by_id[ids[0]].attributes["run_id"] == "r1"


def test_close_without_a_dead_letter_makes_no_client():
    dead = DeadLetter("127.0.0.1:1", "projects/p/topics/t")
    dead.close()
    assert dead.client is None
