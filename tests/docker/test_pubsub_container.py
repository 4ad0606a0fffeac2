"""The emulator image under testcontainers: healthy, its topology loaded, Google's client works unchanged."""

from __future__ import annotations

import urllib.request

import pytest

from services.common.settings import DETECTOR_SUBSCRIPTION, EVENTS_TOPIC

pytestmark = pytest.mark.docker


def test_health_answers_ok_like_googles_emulator(hyp_pubsub):
    with urllib.request.urlopen(hyp_pubsub.pubsub_rest_url + "/", timeout=5) as response:
        assert response.read().decode().strip() == "Ok."


def test_publish_and_pull_through_the_published_port(hyp_pubsub):
    publisher = hyp_pubsub.publisher()
    subscriber = hyp_pubsub.subscriber()
    sub = hyp_pubsub.subscription(DETECTOR_SUBSCRIPTION)
    message_id = publisher.publish(hyp_pubsub.topic(EVENTS_TOPIC), b'{"event": "view_item"}', run_id="tc").result(30)
    received = []
    for _ in range(20):  # bounded: pull waits server-side up to its deadline
        response = subscriber.pull(request={"subscription": sub, "max_messages": 100}, timeout=10)
        received += list(response.received_messages)
        if any(m.message.message_id == message_id for m in received):
            break
    got = [m for m in received if m.message.message_id == message_id]
    assert got and got[0].message.attributes["run_id"] == "tc"
    subscriber.acknowledge(request={"subscription": sub, "ack_ids": [m.ack_id for m in received]})


def test_runs_as_non_root(hyp_pubsub):
    out, _, code = hyp_pubsub.compose.exec_in_container(["id", "-u"], "pubsub")
    assert code == 0 and out.strip() == "10001"
