"""Bounded memory through Google's client: the publish budget (RESOURCE_EXHAUSTED, then recovery once the
backlog is acked) and message retention dropping an unread backlog (sped up with the local-only option)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.api_core import exceptions
from google.pubsub_v1 import types

from services.common import metric_names as m
from services.common import prometheus
from services.common.processes import wait_for
from services.pubsub import metrics as pubsub_metrics
from services.testing.pubsub import EmulatorProcess, drain, start_emulator, topic_and_subscription, unique

pytestmark = [
    pytest.mark.integration,
    # one Publish RPC without the batching client's retries goes through its GAPIC client, `.api`
    pytest.mark.filterwarnings('ignore:The "api" property:DeprecationWarning'),
    pytest.mark.filterwarnings("ignore:The return_immediately flag:DeprecationWarning"),
]
PAYLOAD = b"x" * 1000


@pytest.fixture(scope="module")
def small_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """Memory only, a 2 MiB budget, retention 300 times faster than its duration."""
    emulator = start_emulator(
        tmp_path_factory.mktemp("budget"),
        topology="none",
        extra_env={"HYP_PUBSUB_MEMORY_BUDGET_MB": "2", "HYP_PUBSUB_RETENTION_SPEEDUP": "300"},
    )
    try:
        yield emulator
    finally:
        assert emulator.stop() == 0


def _scrape(emulator: EmulatorProcess) -> prometheus.Scrape:
    return prometheus.parse(httpx.get(f"{emulator.rest_url}/metrics", timeout=5).text)


def _publish_once(emulator: EmulatorProcess, topic: str, n: int = 100) -> list[str]:
    """One Publish RPC without the client's retries (it retries RESOURCE_EXHAUSTED, as on GCP)."""
    messages = [types.PubsubMessage(data=PAYLOAD) for _ in range(n)]
    return list(emulator.publisher().api.publish(topic=topic, messages=messages, retry=None, timeout=10).message_ids)


@pytest.mark.local_only("HYP_PUBSUB_MEMORY_BUDGET_MB: GCP has quotas, not a memory budget")
def test_a_full_budget_refuses_publishes_with_resource_exhausted_until_the_backlog_is_acked(
    small_emulator: EmulatorProcess,
) -> None:
    topic, sub = topic_and_subscription(small_emulator)
    published = 0
    with pytest.raises(exceptions.ResourceExhausted) as err:
        for _ in range(100):  # 2 MiB holds about 1,800 messages of 1 KB
            published += len(_publish_once(small_emulator, topic))
    assert "memory budget (HYP_PUBSUB_MEMORY_BUDGET_MB=2)" in err.value.message
    assert 1000 <= published <= 2000
    scrape = _scrape(small_emulator)
    assert scrape.total(pubsub_metrics.PUBLISH_REJECTED) == 1
    retained = scrape.total(pubsub_metrics.MEMORY_RETAINED) or 0
    assert 2 * 1024 * 1024 <= retained <= 2 * 1024 * 1024 + 100 * 1200  # reached; passed by one request at most
    assert scrape.total(m.PUBSUB_SUBSCRIPTION_BACKLOG, subscription=sub) == published  # nothing half-stored

    assert len(drain(small_emulator.subscriber(), sub, idle_s=0.5)) == published
    # the acked log is truncated by housekeeping (every 2 s): then publishes go through again
    wait_for(lambda: _publishable(small_emulator, topic), 15, "a publish to succeed after the backlog was acked")


def _publishable(emulator: EmulatorProcess, topic: str) -> bool:
    try:
        return bool(_publish_once(emulator, topic, 10))
    except exceptions.ResourceExhausted:
        return False


@pytest.mark.local_only("HYP_PUBSUB_RETENTION_SPEEDUP runs a 10-minute retention in 2 s")
def test_retention_drops_an_unread_backlog_and_counts_it(small_emulator: EmulatorProcess) -> None:
    topic, sub = topic_and_subscription(small_emulator, message_retention_duration={"seconds": 600})
    _publish_once(small_emulator, topic, 20)

    def expired() -> float | None:
        return _scrape(small_emulator).total(m.PUBSUB_SUBSCRIPTION_RETENTION_EXPIRED, subscription=sub)

    assert wait_for(lambda: expired() == 20, 20, "20 messages expired by retention")
    assert _scrape(small_emulator).total(m.PUBSUB_SUBSCRIPTION_BACKLOG, subscription=sub) == 0
    response = small_emulator.subscriber().pull(subscription=sub, max_messages=100, return_immediately=True)
    assert list(response.received_messages) == []
    _publish_once(small_emulator, topic, 3)  # what comes after is delivered as usual
    assert len(drain(small_emulator.subscriber(), sub, idle_s=0.5)) == 3


@pytest.mark.gcp_parity("https://cloud.google.com/pubsub/docs/subscription-properties")
def test_the_speedup_does_not_change_the_apis_ten_minute_minimum(small_emulator: EmulatorProcess) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        topic_and_subscription(small_emulator, message_retention_duration={"seconds": 300})


@pytest.mark.local_only("--data-dir: backlog past the budget is kept (on disk and, today, in memory)")
def test_with_a_data_dir_the_budget_does_not_apply(tmp_path: Path) -> None:
    emulator = start_emulator(
        tmp_path, topology="none", data_dir=tmp_path / "data", extra_env={"HYP_PUBSUB_MEMORY_BUDGET_MB": "1"}
    )
    try:
        topic, _ = topic_and_subscription(emulator)
        assert sum(len(_publish_once(emulator, topic)) for _ in range(20)) == 2000  # 2 MB past a 1 MiB budget
    finally:
        assert emulator.stop() == 0


@pytest.mark.gcp_parity("https://cloud.google.com/pubsub/docs/reference/rpc/google.pubsub.v1#subscription")
def test_a_subscription_reports_its_topics_retention_as_output_only(small_emulator: EmulatorProcess) -> None:
    publisher, subscriber = small_emulator.publisher(), small_emulator.subscriber()
    topic = small_emulator.topic_path(unique("retained"))
    publisher.create_topic(request={"name": topic, "message_retention_duration": {"seconds": 1200}})
    sub = small_emulator.subscription_path(unique("retained"))
    created = subscriber.create_subscription(
        request={"name": sub, "topic": topic, "topic_message_retention_duration": {"seconds": 99999}}
    )
    assert created.topic_message_retention_duration.total_seconds() == 1200  # the request's value is ignored
    publisher.update_topic(
        request={
            "topic": {"name": topic, "message_retention_duration": {"seconds": 3600}},
            "update_mask": {"paths": ["message_retention_duration"]},
        }
    )
    assert subscriber.get_subscription(subscription=sub).topic_message_retention_duration.total_seconds() == 3600
    _, plain_sub = topic_and_subscription(small_emulator)
    assert not subscriber.get_subscription(subscription=plain_sub).topic_message_retention_duration
