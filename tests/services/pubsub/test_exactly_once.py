"""Exactly-once delivery in the broker (fast, in-process): ack id validity, error shape, REST JSON shape."""

from __future__ import annotations

import grpc
import pytest
from google.pubsub_v1 import types
from google.rpc import error_details_pb2

from services.pubsub.broker import Broker
from services.pubsub.errors import INVALID_ACK_ID, ApiError

pytestmark = pytest.mark.gcp_parity("https://cloud.google.com/pubsub/docs/exactly-once-delivery")

TOPIC = "projects/p1-test/topics/topic-eod"
SUB = "projects/p1-test/subscriptions/sub-eod"


def _broker(**sub_fields) -> Broker:
    b = Broker()
    b.create_topic(types.Topic.pb()(name=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC, **sub_fields))
    return b


def _publish(b: Broker, *data: str) -> list[str]:
    return b.publish(TOPIC, types.PublishRequest.pb()(messages=[{"data": d.encode()} for d in data]).messages)


def _pull(b: Broker, n: int = 100) -> list:
    return list(types.PullResponse.pb().FromString(b"".join(b.pull(SUB, n, True, 0))).received_messages)


def _expire_all(b: Broker) -> None:
    """Move every lease's deadline into the past, as if the ack deadline had run out."""
    sub = b.subs[SUB]
    sub.leased = {seq: (0.0, gen) for seq, (_, gen) in sub.leased.items()}
    sub.next_expiry = 0.0


def _failed_ids(exc: ApiError) -> dict[str, str]:
    assert exc.code == grpc.StatusCode.INVALID_ARGUMENT
    (info,) = exc.details
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == "EXACTLY_ONCE_ACKID_FAILURE" and info.domain == "pubsub.googleapis.com"
    return dict(info.metadata)


def test_valid_ack_succeeds_and_second_ack_of_same_id_fails() -> None:
    b = _broker(enable_exactly_once_delivery=True)
    _publish(b, "a")
    (m,) = _pull(b)
    b.acknowledge(SUB, [m.ack_id])
    assert b.subs[SUB].acked == 1
    with pytest.raises(ApiError) as err:
        b.acknowledge(SUB, [m.ack_id])
    assert _failed_ids(err.value) == {m.ack_id: INVALID_ACK_ID}
    assert b.subs[SUB].acked == 1


def test_expired_ack_id_fails_even_before_housekeeping_and_redelivery_gets_a_new_id() -> None:
    b = _broker(enable_exactly_once_delivery=True)
    _publish(b, "a")
    (first,) = _pull(b)
    _expire_all(b)
    with pytest.raises(ApiError) as err:  # the deadline passed; tick() has not run yet
        b.acknowledge(SUB, [first.ack_id])
    assert _failed_ids(err.value) == {first.ack_id: INVALID_ACK_ID}
    with pytest.raises(ApiError):
        b.modify_ack_deadline(SUB, [first.ack_id], 30)
    b.tick()
    (second,) = _pull(b)
    assert second.message.message_id == first.message.message_id and second.ack_id != first.ack_id
    with pytest.raises(ApiError):  # only the latest delivery's ack id counts
        b.acknowledge(SUB, [first.ack_id])
    b.acknowledge(SUB, [second.ack_id])
    assert len(b.subs[SUB].unacked) == 0


def test_mixed_batch_acks_the_valid_ids_and_names_only_the_failed_ones() -> None:
    b = _broker(enable_exactly_once_delivery=True)
    _publish(b, "a", "b")
    m1, m2 = _pull(b)
    with pytest.raises(ApiError) as err:
        b.acknowledge(SUB, [m1.ack_id, "garbage", f"{m2.ack_id}0"])
    assert _failed_ids(err.value) == {"garbage": INVALID_ACK_ID, f"{m2.ack_id}0": INVALID_ACK_ID}
    assert len(b.subs[SUB].unacked) == 1  # m1 acked despite the error
    b.acknowledge(SUB, [m2.ack_id])


def test_modack_extends_and_nack_invalidates_the_ack_id() -> None:
    b = _broker(enable_exactly_once_delivery=True)
    _publish(b, "a")
    (first,) = _pull(b)
    b.modify_ack_deadline(SUB, [first.ack_id], 0)  # nack: valid id, succeeds
    with pytest.raises(ApiError):
        b.acknowledge(SUB, [first.ack_id])
    (second,) = _pull(b)
    b.modify_ack_deadline(SUB, [second.ack_id], 600)
    b.tick()
    assert _pull(b) == []  # still leased: no redelivery while the extended deadline holds
    b.acknowledge(SUB, [second.ack_id])


def test_without_the_flag_stale_and_repeated_acks_are_silently_accepted() -> None:
    b = _broker()
    _publish(b, "a")
    (first,) = _pull(b)
    _expire_all(b)
    b.acknowledge(SUB, [first.ack_id])  # at-least-once: a late ack may still succeed
    b.acknowledge(SUB, [first.ack_id])
    b.modify_ack_deadline(SUB, [first.ack_id], 10)
    assert len(b.subs[SUB].unacked) == 0


def test_error_json_carries_the_error_info_as_the_rest_api_does() -> None:
    b = _broker(enable_exactly_once_delivery=True)
    with pytest.raises(ApiError) as err:
        b.acknowledge(SUB, ["1-1"])
    body = err.value.to_json()["error"]
    assert body["code"] == 400 and body["status"] == "INVALID_ARGUMENT"
    assert body["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "EXACTLY_ONCE_ACKID_FAILURE",
            "domain": "pubsub.googleapis.com",
            "metadata": {"1-1": INVALID_ACK_ID},
        }
    ]
