"""The REST surface at the real API's paths, the health check and /metrics."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.fixtures.pubsub import EmulatorProcess, unique

pytestmark = [pytest.mark.integration, pytest.mark.gcp_parity("https://cloud.google.com/pubsub/docs/reference/rest")]


def test_rest_round_trip_and_metrics(pubsub_emulator: EmulatorProcess) -> None:
    api = httpx.Client(base_url=f"{pubsub_emulator.rest_url}/v1", timeout=20)
    topic = pubsub_emulator.topic_path(unique("rest"))
    sub = pubsub_emulator.subscription_path(unique("rest"))
    assert api.put(f"/{topic}", json={}).json()["name"] == topic
    assert api.put(f"/{topic}", json={}).status_code == 409
    created = api.put(f"/{sub}", json={"topic": topic, "ackDeadlineSeconds": 30}).json()
    assert created["ackDeadlineSeconds"] == 30
    data = base64.b64encode(b"via rest").decode()
    ids = api.post(f"/{topic}:publish", json={"messages": [{"data": data, "attributes": {"a": "1"}}]}).json()
    assert len(ids["messageIds"]) == 1
    pulled = api.post(f"/{sub}:pull", json={"maxMessages": 10}).json()["receivedMessages"]
    assert base64.b64decode(pulled[0]["message"]["data"]) == b"via rest"
    assert pulled[0]["message"]["messageId"] == ids["messageIds"][0]
    assert api.post(f"/{sub}:acknowledge", json={"ackIds": [pulled[0]["ackId"]]}).json() == {}
    assert api.post(f"/{sub}:pull", json={"maxMessages": 10, "returnImmediately": True}).json() == {}
    listed = api.get(f"/projects/{pubsub_emulator.project}/topics").json()["topics"]
    assert topic in [t["name"] for t in listed]
    err = api.get(f"/{pubsub_emulator.topic_path(unique('missing'))}")
    assert err.status_code == 404 and err.json()["error"]["status"] == "NOT_FOUND"
    bad = api.put(f"/{pubsub_emulator.topic_path('goog-no')}", json={})
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"

    metrics = httpx.get(f"{pubsub_emulator.rest_url}/metrics").text
    assert f'pubsub_topic_messages_published_total{{topic="{topic}"}} 1' in metrics
    assert f'pubsub_subscription_acked_total{{subscription="{sub}",topic="{topic}"}} 1' in metrics
    assert f'pubsub_subscription_backlog_messages{{subscription="{sub}",topic="{topic}"}} 0' in metrics
    assert "pubsub_subscription_oldest_unacked_message_age_seconds" in metrics
    assert api.delete(f"/{sub}").status_code == 200
    assert api.delete(f"/{sub}").status_code == 404
