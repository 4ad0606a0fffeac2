"""The memory budget (no --data-dir) and the local retention speed-up, on a real Broker."""

from __future__ import annotations

import time

import grpc
import pytest
from google.pubsub_v1 import types

from services.pubsub import metrics
from services.pubsub.broker import MESSAGE_OVERHEAD_BYTES, UNACKED_OVERHEAD_BYTES, Broker
from services.pubsub.errors import ApiError

pytestmark = pytest.mark.local_only("the emulator's memory budget and retention speed-up (GCP has neither)")

TOPIC = "projects/p1-test/topics/topic-a"
SUB = "projects/p1-test/subscriptions/sub-a"
PAYLOAD = b"x" * 1000


def _broker(budget: int, **sub_fields) -> Broker:
    b = Broker(memory_budget_bytes=budget)
    b.create_topic(types.Topic.pb()(name=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC, **sub_fields))
    return b


def _publish(b: Broker, n: int = 1) -> list[str]:
    return b.publish(TOPIC, types.PublishRequest.pb()(messages=[{"data": PAYLOAD}] * n).messages)


def _pull_ack(b: Broker, n: int) -> None:
    raw = b"".join(b.pull(SUB, n, True, 0))
    got = types.PullResponse.pb().FromString(raw).received_messages
    b.acknowledge(SUB, [m.ack_id for m in got])


def test_publishes_past_the_budget_get_resource_exhausted_naming_it() -> None:
    b = _broker(200_000)
    published = 0
    with pytest.raises(ApiError) as err:
        for _ in range(1000):
            _publish(b, 10)
            published += 10
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "HYP_PUBSUB_MEMORY_BUDGET_MB" in err.value.message and "--data-dir" in err.value.message
    per_message = b.retained_bytes() / published
    assert len(PAYLOAD) + MESSAGE_OVERHEAD_BYTES + UNACKED_OVERHEAD_BYTES < per_message < len(PAYLOAD) + 250
    assert b.retained_bytes() - 10 * per_message < 200_000 <= b.retained_bytes()  # the last request passed it
    assert b.stats()["subscriptions"][0]["backlog"] == published  # the refused request stored nothing


def test_acking_frees_the_budget_and_publishes_go_on() -> None:
    b = _broker(200_000)
    with pytest.raises(ApiError):
        for _ in range(1000):
            _publish(b, 10)
    _pull_ack(b, 1000)
    b.compact()  # truncates the acked prefix of the log
    assert b.retained_bytes() == 0
    _publish(b, 10)


def test_no_budget_means_no_limit_and_the_metrics_say_which() -> None:
    unlimited = _broker(0)
    _publish(unlimited, 1000)
    assert "memory" not in unlimited.stats()
    limited = _broker(10_000_000)
    _publish(limited, 10)
    with pytest.raises(ApiError):
        for _ in range(100):
            _publish(limited, 1000)
    text = metrics.render(limited.stats())
    assert f"{metrics.MEMORY_BUDGET} 10000000" in text
    assert f"{metrics.PUBLISH_REJECTED} 1" in text


def test_retention_speedup_expires_a_ten_minute_retention_in_seconds() -> None:
    b = Broker(retention_speedup=300)  # 600 s acts as 2 s
    b.create_topic(types.Topic.pb()(name=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC, message_retention_duration={"seconds": 600}))
    _publish(b, 5)
    b.compact(wall=time.time() + 1)
    assert b.stats()["subscriptions"][0]["backlog"] == 5
    b.compact(wall=time.time() + 3)
    stats = b.stats()
    assert stats["subscriptions"][0]["backlog"] == 0 and stats["subscriptions"][0]["retention_expired_total"] == 5
    assert stats["topics"][0]["retained_messages"] == 0
