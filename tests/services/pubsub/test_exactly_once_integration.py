"""Exactly-once delivery through google-cloud-pubsub against the emulator as a real process.

Parity: the error shape (INVALID_ARGUMENT + ErrorInfo EXACTLY_ONCE_ACKID_FAILURE with
PERMANENT_FAILURE_INVALID_ACK_ID per ack id) is what the real service sends and what the Python
client's exactly-once code reads; these tests have not been run against GCP itself.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.subscriber.exceptions import AcknowledgeError, AcknowledgeStatus
from google.pubsub_v1 import types

from services.common.processes import wait_for
from services.testing.pubsub import topic_and_subscription
from tests.fixtures.pubsub import EmulatorProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(60),
    pytest.mark.gcp_parity("https://cloud.google.com/pubsub/docs/exactly-once-delivery"),
]
WAIT_S = 20.0


def _backlog(emulator: EmulatorProcess, sub: str) -> int:
    state = httpx.get(f"{emulator.rest_url}/admin/state", timeout=5).json()
    return next(s for s in state["subscriptions"] if s["name"] == sub)["backlog"]


def _invalid_ack(future) -> None:
    with pytest.raises(AcknowledgeError) as err:
        future.result(timeout=WAIT_S)
    assert err.value.error_code == AcknowledgeStatus.INVALID_ACK_ID


def test_ack_with_response_succeeds_then_a_second_ack_is_reported(pubsub_emulator: EmulatorProcess) -> None:
    topic, sub = topic_and_subscription(pubsub_emulator, enable_exactly_once_delivery=True)
    got: queue.Queue = queue.Queue()
    streaming = pubsub_emulator.subscriber().subscribe(sub, got.put)
    try:
        pubsub_emulator.publisher().publish(topic, b"once").result(timeout=WAIT_S)
        msg = got.get(timeout=WAIT_S)
        assert msg.exactly_once_enabled  # learned from StreamingPullResponse.subscription_properties
        assert msg.ack_with_response().result(timeout=WAIT_S) == AcknowledgeStatus.SUCCESS
        assert _backlog(pubsub_emulator, sub) == 0
        _invalid_ack(msg.ack_with_response())  # the same ack id again: already used
    finally:
        streaming.cancel()
        streaming.result(timeout=WAIT_S)


def test_expired_ack_id_fails_and_the_message_comes_back_once_with_a_new_ack_id(
    pubsub_emulator: EmulatorProcess,
) -> None:
    topic, sub = topic_and_subscription(pubsub_emulator, enable_exactly_once_delivery=True)
    got: queue.Queue = queue.Queue()
    # The client stops extending a lease after max_lease_duration; its receipt modack asks for 10 s.
    flow = pubsub_v1.types.FlowControl(
        max_lease_duration=1, min_duration_per_lease_extension=10, max_duration_per_lease_extension=10
    )
    streaming = pubsub_emulator.subscriber().subscribe(sub, got.put, flow_control=flow)
    try:
        message_id = pubsub_emulator.publisher().publish(topic, b"late").result(timeout=WAIT_S)
        first = got.get(timeout=WAIT_S)
        # shorten the deadline to 1 s (the real minimum for a subscription is 10 s; a modack may go lower)
        assert first.modify_ack_deadline_with_response(1).result(timeout=WAIT_S) == AcknowledgeStatus.SUCCESS
        second = got.get(timeout=WAIT_S)  # redelivered once the (last extended) deadline has passed
        assert second.message_id == first.message_id == message_id
        assert second.ack_id != first.ack_id
        _invalid_ack(first.ack_with_response())
        assert _backlog(pubsub_emulator, sub) == 1  # the failed ack did not remove it
        assert second.ack_with_response().result(timeout=WAIT_S) == AcknowledgeStatus.SUCCESS
        assert _backlog(pubsub_emulator, sub) == 0
        _invalid_ack(first.modify_ack_deadline_with_response(30))  # modacks report the same way
        with pytest.raises(queue.Empty):  # acked: not delivered a third time
            got.get(timeout=2)
    finally:
        streaming.cancel()
        streaming.result(timeout=WAIT_S)


def test_unary_ack_error_carries_error_info_per_ack_id(pubsub_emulator: EmulatorProcess) -> None:
    topic, sub = topic_and_subscription(pubsub_emulator, enable_exactly_once_delivery=True)
    pubsub_emulator.publisher().publish(topic, b"x").result(timeout=WAIT_S)
    client = pubsub_emulator.subscriber()
    (msg,) = client.pull(subscription=sub, max_messages=1, timeout=WAIT_S).received_messages
    with pytest.raises(exceptions.InvalidArgument) as err:
        client.acknowledge(subscription=sub, ack_ids=[msg.ack_id, "not-an-ack-id"])
    (info,) = [d for d in err.value.details if type(d).__name__ == "ErrorInfo"]
    assert info.reason == "EXACTLY_ONCE_ACKID_FAILURE"
    assert dict(info.metadata) == {"not-an-ack-id": "PERMANENT_FAILURE_INVALID_ACK_ID"}
    assert _backlog(pubsub_emulator, sub) == 0  # the valid ack id in the same request was applied


def _stream(client, first: types.StreamingPullRequest, then: queue.Queue) -> Iterator:
    def requests() -> Iterator[types.StreamingPullRequest]:
        yield first
        while (req := then.get()) is not None:
            yield req

    return iter(client.streaming_pull(requests=requests(), timeout=WAIT_S))


def test_streaming_pull_confirms_acks_and_modacks(pubsub_emulator: EmulatorProcess) -> None:
    topic, sub = topic_and_subscription(pubsub_emulator, enable_exactly_once_delivery=True)
    pubsub_emulator.publisher().publish(topic, b"a").result(timeout=WAIT_S)
    pubsub_emulator.publisher().publish(topic, b"b").result(timeout=WAIT_S)
    sends: queue.Queue = queue.Queue()
    first = types.StreamingPullRequest(subscription=sub, stream_ack_deadline_seconds=30)
    responses = _stream(pubsub_emulator.subscriber(), first, sends)
    try:
        received = []
        while len(received) < 2:
            resp = next(responses)
            assert resp.subscription_properties.exactly_once_delivery_enabled
            received += resp.received_messages
        a, b = received
        sends.put(
            types.StreamingPullRequest(modify_deadline_ack_ids=[b.ack_id, "9-9"], modify_deadline_seconds=[60, 60])
        )
        resp = next(responses)
        assert list(resp.modify_ack_deadline_confirmation.ack_ids) == [b.ack_id]
        assert list(resp.modify_ack_deadline_confirmation.invalid_ack_ids) == ["9-9"]
        sends.put(types.StreamingPullRequest(ack_ids=[a.ack_id, b.ack_id]))
        resp = next(responses)
        assert list(resp.acknowledge_confirmation.ack_ids) == [a.ack_id, b.ack_id]
        assert list(resp.acknowledge_confirmation.invalid_ack_ids) == []
        assert _backlog(pubsub_emulator, sub) == 0
        sends.put(types.StreamingPullRequest(ack_ids=[a.ack_id]))  # already used
        resp = next(responses)
        assert list(resp.acknowledge_confirmation.ack_ids) == []
        assert list(resp.acknowledge_confirmation.invalid_ack_ids) == [a.ack_id]
    finally:
        sends.put(None)


def test_plain_subscription_keeps_at_least_once_semantics(pubsub_emulator: EmulatorProcess) -> None:
    topic, sub = topic_and_subscription(pubsub_emulator)
    got: queue.Queue = queue.Queue()
    streaming = pubsub_emulator.subscriber().subscribe(sub, got.put)
    try:
        pubsub_emulator.publisher().publish(topic, b"plain").result(timeout=WAIT_S)
        msg = got.get(timeout=WAIT_S)
        assert not msg.exactly_once_enabled
        assert msg.ack_with_response().result(timeout=WAIT_S) == AcknowledgeStatus.SUCCESS
    finally:
        streaming.cancel()
        streaming.result(timeout=WAIT_S)
    wait_for(lambda: _backlog(pubsub_emulator, sub) == 0, WAIT_S, "an empty backlog", interval=0.1)
    client = pubsub_emulator.subscriber()
    client.acknowledge(subscription=sub, ack_ids=[msg.ack_id])  # stale and repeated acks: no error
    client.modify_ack_deadline(subscription=sub, ack_ids=[msg.ack_id], ack_deadline_seconds=10)
