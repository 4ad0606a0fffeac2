"""The console's Pub/Sub actions against a real emulator, checked through Google's own client: what the
console publishes arrives, a peek leaves the backlog as it was, chosen messages are acked or nacked,
topics and subscriptions come and go, seek replays, dead-lettered messages are republished."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from services.common.processes import wait_for
from services.console.app import create_app
from services.testing.pubsub import pull, topic_and_subscription, unique
from tests.services.console.conftest import console_settings

pytestmark = [pytest.mark.integration, pytest.mark.local_only("the console's actions over the emulator's REST API")]


@pytest.fixture(scope="module")
def console(pubsub_emulator, tmp_path_factory):
    settings = console_settings(
        HYP_CONSOLE_PUBSUB_URL=pubsub_emulator.rest_url,
        PUBSUB_EMULATOR_HOST=pubsub_emulator.host,
        HYP_PROJECT=pubsub_emulator.project,
        HYP_WAREHOUSE_DIR=str(tmp_path_factory.mktemp("warehouse")),
        HYP_CONSOLE_IDLE_REFRESH_S=600,
    )
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        yield client


def backlog(emulator, subscription: str) -> int:
    state = httpx.get(emulator.rest_url + "/admin/state", trust_env=False).json()
    path = emulator.subscription_path(subscription)
    return next(s["backlog"] for s in state["subscriptions"] if s["name"] == path)


def short(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def test_publish_from_a_template_reaches_a_subscription_with_its_attributes(console, pubsub_emulator):
    topic, sub = topic_and_subscription(pubsub_emulator)
    templates = console.get("/api/pubsub/templates").json()
    assert {"view_item", "add_to_cart", "purchase", "purchase (value_spike)"} <= set(templates)
    chosen = templates["purchase (value_spike)"]
    assert chosen["attributes"]["anomaly"] == "1"
    sent = console.post("/api/pubsub/publish", json={"topic": short(topic), **chosen})
    assert sent.status_code == 200, sent.text
    (message,) = pull(pubsub_emulator.subscriber(), sub, 1)
    assert json.loads(message.message.data) == json.loads(chosen["data"])
    assert dict(message.message.attributes) == chosen["attributes"]
    assert message.message.message_id == sent.json()["message_ids"][0]


def test_bad_input_is_refused_with_the_reason(console, pubsub_emulator):
    topic, _ = topic_and_subscription(pubsub_emulator)
    not_json = console.post("/api/pubsub/publish", json={"topic": short(topic), "data": "{nope"})
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    empty = console.post("/api/pubsub/publish", json={"topic": short(topic), "data": ""})
    assert empty.status_code == 400 and "data or at least one attribute" in empty.json()["error"]
    bad_name = console.post("/api/pubsub/publish", json={"topic": "../x", "data": "{}"})
    assert bad_name.status_code == 422 and bad_name.json()["error"].startswith("body.topic")
    missing = console.post("/api/pubsub/publish", json={"topic": unique("absent"), "data": "{}"})
    assert missing.status_code == 404 and "not found" in missing.json()["error"].lower(), missing.text
    # a field validator's own error (its exception in pydantic's ctx) is named too, not a 500 (found by tests/fuzz)
    empty_key = console.post("/api/pubsub/publish", json={"topic": short(topic), "attributes": {"": "x"}})
    assert empty_key.status_code == 422 and "attribute key ''" in empty_key.json()["error"], empty_key.text


def test_peek_shows_messages_and_leaves_the_backlog_unchanged(console, pubsub_emulator):
    topic, sub = topic_and_subscription(pubsub_emulator)
    for i in range(3):
        sent = console.post("/api/pubsub/publish", json={"topic": short(topic), "data": json.dumps({"i": i})})
        assert sent.status_code == 200, sent.text
    assert backlog(pubsub_emulator, short(sub)) == 3
    peeked = console.post("/api/pubsub/peek", json={"subscription": short(sub), "max_messages": 10}).json()
    assert sorted(json.loads(m["data"])["i"] for m in peeked["messages"]) == [0, 1, 2]
    assert backlog(pubsub_emulator, short(sub)) == 3
    # handed back at once (a nack): a subscriber gets every message again right away
    again = pull(pubsub_emulator.subscriber(), sub, 3, ack=False)
    assert sorted(json.loads(m.message.data)["i"] for m in again) == [0, 1, 2]


def test_ack_and_nack_chosen_messages_of_a_held_peek(console, pubsub_emulator):
    topic, sub = topic_and_subscription(pubsub_emulator)
    for i in range(3):
        console.post("/api/pubsub/publish", json={"topic": short(topic), "data": json.dumps({"i": i})})
    held = console.post("/api/pubsub/peek", json={"subscription": short(sub), "max_messages": 10, "hold_s": 120})
    messages = {json.loads(m["data"])["i"]: m["ack_id"] for m in held.json()["messages"]}
    assert held.json()["held_until"] > time.time() and set(messages) == {0, 1, 2}
    acked = console.post("/api/pubsub/ack", json={"subscription": short(sub), "ack_ids": [messages[0]]})
    assert acked.json() == {"acked": 1}
    nacked = console.post("/api/pubsub/nack", json={"subscription": short(sub), "ack_ids": [messages[1]]})
    assert nacked.json() == {"nacked": 1}
    assert backlog(pubsub_emulator, short(sub)) == 2
    # message 2 is still leased by the peek: only the nacked one comes back now
    (back,) = pull(pubsub_emulator.subscriber(), sub, 1)
    assert json.loads(back.message.data) == {"i": 1}


def test_topics_and_subscriptions_are_created_and_deleted(console, pubsub_emulator):
    topic, sub, dead = unique("console-topic"), unique("console-sub"), unique("console-dead")
    assert console.put("/api/pubsub/topics", json={"name": topic}).status_code == 200
    assert console.put("/api/pubsub/topics", json={"name": dead}).status_code == 200
    twice = console.put("/api/pubsub/topics", json={"name": topic})
    assert twice.status_code == 409 and "exists" in twice.json()["error"].lower(), twice.text
    body = {"name": sub, "topic": topic, "filter": 'attributes.anomaly = "1"', "dead_letter_topic": dead}
    created = console.put("/api/pubsub/subscriptions", json=body)
    assert created.status_code == 200, created.text
    got = pubsub_emulator.subscriber().get_subscription(subscription=pubsub_emulator.subscription_path(sub))
    assert got.filter == 'attributes.anomaly = "1"'
    assert got.dead_letter_policy.dead_letter_topic == pubsub_emulator.topic_path(dead)
    listed = console.get("/api/pubsub/resources").json()
    assert topic in listed["topics"] and {"name": sub, "topic": topic} in listed["subscriptions"]
    assert console.delete(f"/api/pubsub/subscriptions/{sub}").status_code == 200
    assert console.delete(f"/api/pubsub/topics/{topic}").status_code == 200
    listed = console.get("/api/pubsub/resources").json()
    assert topic not in listed["topics"] and sub not in [s["name"] for s in listed["subscriptions"]]
    assert console.delete(f"/api/pubsub/topics/{topic}").status_code == 404


def test_seek_to_a_time_replays_what_was_acked_since(console, pubsub_emulator):
    topic, sub = topic_and_subscription(pubsub_emulator, retain_acked_messages=True)
    before = datetime.now(UTC) - timedelta(seconds=1)
    console.post("/api/pubsub/publish", json={"topic": short(topic), "data": '{"n": 1}'})
    pull(pubsub_emulator.subscriber(), sub, 1, ack=True)
    assert backlog(pubsub_emulator, short(sub)) == 0
    sought = console.post("/api/pubsub/seek", json={"subscription": short(sub), "time": before.isoformat()})
    assert sought.status_code == 200, sought.text
    assert backlog(pubsub_emulator, short(sub)) == 1
    bad = console.post("/api/pubsub/seek", json={"subscription": short(sub), "time": "yesterday"})
    assert bad.status_code == 422 and "body.time" in bad.json()["error"]


def test_dead_lettered_messages_show_their_reason_and_are_republished(console, pubsub_emulator):
    dead_topic, dead_sub = topic_and_subscription(pubsub_emulator)
    topic, sub = topic_and_subscription(
        pubsub_emulator,
        dead_letter_policy={"dead_letter_topic": dead_topic, "max_delivery_attempts": 5},
    )
    poison = {"topic": short(topic), "data": '{"poison": true}', "attributes": {"k": "v"}}
    console.post("/api/pubsub/publish", json=poison)
    subscriber = pubsub_emulator.subscriber()
    for _ in range(5):  # five deliveries never acked (nacked at once): the sixth goes to the dead-letter topic
        (m,) = pull(subscriber, sub, 1, ack=False)
        subscriber.modify_ack_deadline(subscription=sub, ack_ids=[m.ack_id], ack_deadline_seconds=0)
    wait_for(lambda: backlog(pubsub_emulator, short(dead_sub)) == 1, 20, "the message to be dead-lettered")
    letters = console.get("/api/pubsub/dead-letters", params={"subscription": short(dead_sub), "hold_s": 60}).json()
    (letter,) = letters["messages"]
    assert letter["reason"] == f"not acknowledged after 5 delivery attempts on {short(sub)}"
    assert json.loads(letter["data"]) == {"poison": True}
    item = {k: letter[k] for k in ("ack_id", "data_b64", "attributes")}
    done = console.post("/api/pubsub/republish", json={"subscription": short(dead_sub), "messages": [item]})
    assert done.json() == {"republished": 1, "to": [short(topic)]}, done.text
    assert backlog(pubsub_emulator, short(dead_sub)) == 0
    (back,) = pull(subscriber, sub, 1)
    assert base64.b64encode(back.message.data).decode() == letter["data_b64"]
    assert dict(back.message.attributes) == {"k": "v"}  # Pub/Sub's dead-letter attributes are gone


def test_seek_to_a_snapshot_restores_its_acknowledgement_state(console, pubsub_emulator):
    topic, sub = topic_and_subscription(pubsub_emulator)
    console.post("/api/pubsub/publish", json={"topic": short(topic), "data": '{"n": 2}'})
    snap = unique("console-snap")
    taken = console.put("/api/pubsub/snapshots", json={"name": snap, "subscription": short(sub)})
    assert taken.status_code == 200, taken.text
    assert snap in console.get("/api/pubsub/resources").json()["snapshots"]
    pull(pubsub_emulator.subscriber(), sub, 1, ack=True)
    assert backlog(pubsub_emulator, short(sub)) == 0
    sought = console.post("/api/pubsub/seek", json={"subscription": short(sub), "snapshot": snap})
    assert sought.json() == {"snapshot": snap}, sought.text
    assert backlog(pubsub_emulator, short(sub)) == 1
    neither = console.post("/api/pubsub/seek", json={"subscription": short(sub)})
    assert neither.status_code == 400 and "a time or a snapshot" in neither.json()["error"]
