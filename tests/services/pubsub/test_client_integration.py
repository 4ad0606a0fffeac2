"""google-cloud-pubsub against the emulator running as a real process."""

from __future__ import annotations

import threading
import time

import pytest
from google.api_core import exceptions
from google.cloud import pubsub_v1

from services.common.processes import wait_for
from services.testing.pubsub import pull, topic_and_subscription
from tests.fixtures.pubsub import EmulatorProcess, unique

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/pubsub/docs/reference/rpc/google.pubsub.v1"),
]
WAIT_S = 20.0


@pytest.mark.local_only("the stack's topology file, loaded at start")
def test_default_topology_is_loaded(pubsub_emulator: EmulatorProcess) -> None:
    subs = {
        s.name.rsplit("/", 1)[-1]: s
        for s in pubsub_emulator.subscriber().list_subscriptions(project=f"projects/{pubsub_emulator.project}")
    }
    assert {"hyp_subscription_dataflow", "hyp_subscription_cloud_run", "hyp_subscription_bq_direct"} <= set(subs)
    assert subs["hyp_subscription_cloud_run"].push_config.push_endpoint == "http://127.0.0.1:9/"
    assert subs["hyp_subscription_cloud_run"].dead_letter_policy.dead_letter_topic.endswith("/hyp-deadletter")


def test_publish_and_pull_with_attributes(pubsub_emulator: EmulatorProcess) -> None:
    topic, sub = topic_and_subscription(pubsub_emulator)
    futures = [pubsub_emulator.publisher().publish(topic, f"m{i}".encode(), idx=str(i)) for i in range(20)]
    ids = [f.result(timeout=WAIT_S) for f in futures]
    assert len(set(ids)) == 20
    got = pull(pubsub_emulator.subscriber(), sub, 20)
    assert sorted(m.message.data for m in got) == sorted(f"m{i}".encode() for i in range(20))
    assert all(m.message.attributes["idx"] == m.message.data.decode()[1:] for m in got)
    assert {m.message.message_id for m in got} == set(ids)
    resp = pubsub_emulator.subscriber().pull(subscription=sub, max_messages=5, return_immediately=True, timeout=5)
    assert list(resp.received_messages) == []


def test_publish_with_ordering_keys_delivers_in_order(pubsub_emulator: EmulatorProcess) -> None:
    topic, sub = topic_and_subscription(pubsub_emulator, enable_message_ordering=True)
    publisher = pubsub_emulator.publisher(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    futures = [publisher.publish(topic, f"{k}:{i}".encode(), ordering_key=k) for i in range(30) for k in ("a", "b")]
    for f in futures:
        f.result(timeout=WAIT_S)
    received: dict[str, list[int]] = {"a": [], "b": []}
    lock = threading.Lock()

    def callback(message) -> None:
        key, i = message.data.decode().split(":")
        with lock:
            received[key].append(int(i))
        message.ack()

    future = pubsub_emulator.subscriber().subscribe(sub, callback)
    try:
        wait_for(lambda: sum(map(len, received.values())) >= 60, WAIT_S, "60 messages", interval=0.05)
    finally:
        future.cancel()
    assert received["a"] == list(range(30))
    assert received["b"] == list(range(30))


def test_streaming_pull_subscribe(pubsub_emulator: EmulatorProcess) -> None:
    topic, sub = topic_and_subscription(pubsub_emulator)
    publisher = pubsub_emulator.publisher()
    for f in [publisher.publish(topic, f"s{i}".encode()) for i in range(200)]:
        f.result(timeout=WAIT_S)
    seen: set[bytes] = set()
    done = threading.Event()

    def callback(message) -> None:
        seen.add(message.data)
        message.ack()
        if len(seen) >= 200:
            done.set()

    future = pubsub_emulator.subscriber().subscribe(sub, callback)
    done.wait(WAIT_S)
    future.cancel()
    assert seen == {f"s{i}".encode() for i in range(200)}


def test_nack_is_redelivered_with_attempt_count(pubsub_emulator: EmulatorProcess) -> None:
    dl_topic = pubsub_emulator.topic_path(unique("dl"))
    pubsub_emulator.publisher().create_topic(name=dl_topic)
    topic, sub = topic_and_subscription(
        pubsub_emulator, dead_letter_policy={"dead_letter_topic": dl_topic, "max_delivery_attempts": 10}
    )
    pubsub_emulator.publisher().publish(topic, b"again").result(timeout=WAIT_S)
    client = pubsub_emulator.subscriber()
    first = pull(pubsub_emulator.subscriber(), sub, 1, ack=False)[0]
    assert first.delivery_attempt == 1
    client.modify_ack_deadline(subscription=sub, ack_ids=[first.ack_id], ack_deadline_seconds=0)
    second = pull(pubsub_emulator.subscriber(), sub, 1, ack=False)[0]
    assert second.message.message_id == first.message.message_id
    assert second.delivery_attempt == 2
    client.acknowledge(subscription=sub, ack_ids=[second.ack_id])
    resp = client.pull(subscription=sub, max_messages=1, return_immediately=True, timeout=5)
    assert list(resp.received_messages) == []


def test_dead_letter_after_max_attempts(pubsub_emulator: EmulatorProcess) -> None:
    dl_topic = pubsub_emulator.topic_path(unique("dl"))
    dl_sub = pubsub_emulator.subscription_path(unique("dls"))
    pubsub_emulator.publisher().create_topic(name=dl_topic)
    pubsub_emulator.subscriber().create_subscription(name=dl_sub, topic=dl_topic)
    topic, sub = topic_and_subscription(
        pubsub_emulator, dead_letter_policy={"dead_letter_topic": dl_topic, "max_delivery_attempts": 5}
    )
    pubsub_emulator.publisher().publish(topic, b"poison", kind="bad").result(timeout=WAIT_S)
    client = pubsub_emulator.subscriber()
    for attempt in range(1, 6):
        msg = pull(pubsub_emulator.subscriber(), sub, 1, ack=False)[0]
        assert msg.delivery_attempt == attempt
        client.modify_ack_deadline(subscription=sub, ack_ids=[msg.ack_id], ack_deadline_seconds=0)
    dead = pull(pubsub_emulator.subscriber(), dl_sub, 1)
    assert [m.message.data for m in dead] == [b"poison"]
    attrs = dead[0].message.attributes
    assert attrs["kind"] == "bad"
    assert attrs["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert attrs["CloudPubSubDeadLetterSourceSubscription"] == sub.rsplit("/", 1)[-1]
    resp = client.pull(subscription=sub, max_messages=1, return_immediately=True, timeout=5)
    assert list(resp.received_messages) == []


def test_filter_delivers_only_matching(pubsub_emulator: EmulatorProcess) -> None:
    topic, sub = topic_and_subscription(pubsub_emulator, filter='attributes.event = "purchase" AND NOT attributes:test')
    publisher = pubsub_emulator.publisher()
    cases = [("purchase", {}), ("view_item", {}), ("purchase", {"test": "1"}), ("purchase", {"x": "y"})]
    for f in [publisher.publish(topic, f"{i}".encode(), event=e, **extra) for i, (e, extra) in enumerate(cases)]:
        f.result(timeout=WAIT_S)
    got = pull(pubsub_emulator.subscriber(), sub, 2)
    assert sorted(m.message.data for m in got) == [b"0", b"3"]
    resp = pubsub_emulator.subscriber().pull(subscription=sub, max_messages=10, return_immediately=True, timeout=5)
    assert list(resp.received_messages) == []


def test_seek_to_time_and_snapshot(pubsub_emulator: EmulatorProcess) -> None:
    topic, sub = topic_and_subscription(pubsub_emulator, retain_acked_messages=True)
    publisher, client = pubsub_emulator.publisher(), pubsub_emulator.subscriber()
    before = time.time()
    for f in [publisher.publish(topic, f"a{i}".encode()) for i in range(3)]:
        f.result(timeout=WAIT_S)
    assert len(pull(pubsub_emulator.subscriber(), sub, 3)) == 3  # all acked
    snapshot = pubsub_emulator.snapshot_path(unique("snap"))
    client.create_snapshot(name=snapshot, subscription=sub)
    for f in [publisher.publish(topic, f"b{i}".encode()) for i in range(2)]:
        f.result(timeout=WAIT_S)
    assert sorted(m.message.data for m in pull(pubsub_emulator.subscriber(), sub, 2)) == [b"b0", b"b1"]

    client.seek(request={"subscription": sub, "snapshot": snapshot})
    assert sorted(m.message.data for m in pull(pubsub_emulator.subscriber(), sub, 2)) == [b"b0", b"b1"]

    from google.protobuf import timestamp_pb2

    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int((before - 0.001) * 1e9))
    client.seek(request={"subscription": sub, "time": ts})
    got = sorted(m.message.data for m in pull(pubsub_emulator.subscriber(), sub, 5))
    assert got == [b"a0", b"a1", b"a2", b"b0", b"b1"]
    assert snapshot in [s.name for s in client.list_snapshots(project=f"projects/{pubsub_emulator.project}")]
    client.delete_snapshot(snapshot=snapshot)
    with pytest.raises(exceptions.NotFound):
        client.get_snapshot(snapshot=snapshot)


def test_admin_errors(pubsub_emulator: EmulatorProcess) -> None:
    publisher, client = pubsub_emulator.publisher(), pubsub_emulator.subscriber()
    topic = pubsub_emulator.topic_path(unique("t"))
    publisher.create_topic(name=topic)
    with pytest.raises(exceptions.AlreadyExists):
        publisher.create_topic(name=topic)
    with pytest.raises(exceptions.NotFound):
        publisher.get_topic(topic=pubsub_emulator.topic_path(unique("missing")))
    with pytest.raises(exceptions.InvalidArgument, match="Invalid"):
        publisher.create_topic(name=pubsub_emulator.topic_path("goog-reserved"))
    with pytest.raises(exceptions.InvalidArgument):
        publisher.create_topic(name=pubsub_emulator.topic_path("1starts-with-digit"))
    with pytest.raises(exceptions.InvalidArgument):
        publisher.create_topic(name=pubsub_emulator.topic_path("ab"))
    with pytest.raises(exceptions.NotFound):
        client.create_subscription(name=pubsub_emulator.subscription_path(unique("s")), topic=topic + "-nope")
    sub = pubsub_emulator.subscription_path(unique("s"))
    client.create_subscription(name=sub, topic=topic)
    with pytest.raises(exceptions.AlreadyExists):
        client.create_subscription(name=sub, topic=topic)
    with pytest.raises(exceptions.InvalidArgument, match="ack_deadline"):
        client.create_subscription(
            name=pubsub_emulator.subscription_path(unique("s")), topic=topic, ack_deadline_seconds=5
        )
    with pytest.raises(exceptions.InvalidArgument, match="filter"):
        client.create_subscription(
            request={
                "name": pubsub_emulator.subscription_path(unique("s")),
                "topic": topic,
                "filter": 'attributes.x = "y" AND attributes.z = "w" OR attributes:q',
            }
        )
    with pytest.raises(exceptions.NotFound):
        client.pull(subscription=pubsub_emulator.subscription_path(unique("missing")), max_messages=1, timeout=5)
    assert sub in list(publisher.list_topic_subscriptions(topic=topic))
    publisher.delete_topic(topic=topic)
    assert client.get_subscription(subscription=sub).topic == "_deleted-topic_"
    client.delete_subscription(subscription=sub)
    with pytest.raises(exceptions.NotFound):
        client.delete_subscription(subscription=sub)
