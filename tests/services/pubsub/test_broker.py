"""The broker in-process (fast, no processes): leases, ordering, compaction, seek, durability replay."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from google.pubsub_v1 import types

from services.pubsub.broker import Broker
from services.pubsub.errors import ApiError
from services.pubsub.storage import Store

TOPIC = "projects/p1-test/topics/topic-a"
SUB = "projects/p1-test/subscriptions/sub-a"


def _broker(store: Store | None = None, **sub_fields) -> Broker:
    b = Broker(store)
    b.create_topic(types.Topic.pb()(name=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC, **sub_fields))
    return b


def _publish(b: Broker, *items: tuple[str, str]) -> list[str]:
    msgs = types.PublishRequest.pb()(messages=[{"data": d.encode(), "ordering_key": k} for d, k in items]).messages
    return b.publish(TOPIC, msgs)


def _pull(b: Broker, n: int = 100) -> list:
    return list(types.PullResponse.pb().FromString(b"".join(b.pull(SUB, n, True, 0))).received_messages)


def test_ack_removes_and_expiry_redelivers() -> None:
    b = _broker()
    _publish(b, ("a", ""), ("b", ""))
    first = _pull(b)
    assert [m.message.data for m in first] == [b"a", b"b"]
    assert _pull(b) == []
    b.acknowledge(SUB, [first[0].ack_id])
    sub = b.subs[SUB]
    sub.leased = {seq: (0.0, gen) for seq, (_, gen) in sub.leased.items()}  # force the deadline into the past
    sub.next_expiry = 0.0
    b.tick()
    again = _pull(b)
    assert [m.message.data for m in again] == [b"b"]
    assert sub.expired == 1


def test_ordering_key_blocks_until_ack_and_nack_redelivers_in_order() -> None:
    b = _broker(enable_message_ordering=True)
    _publish(b, ("k1", "K"), ("other", ""), ("k2", "K"))
    first = _pull(b, 10)
    assert [m.message.data for m in first] == [b"k1", b"other", b"k2"]  # one batch may carry a key's run
    b.modify_ack_deadline(SUB, [first[0].ack_id], 0)  # nack k1: k2 comes back behind it
    again = _pull(b, 10)
    assert [m.message.data for m in again] == [b"k1", b"k2"]
    _publish(b, ("k3", "K"))
    assert _pull(b, 10) == []  # K is leased: k3 waits
    b.acknowledge(SUB, [m.ack_id for m in again])
    assert [m.message.data for m in _pull(b, 10)] == [b"k3"]


def test_max_messages_is_clamped_to_1000_and_must_be_positive() -> None:
    b = _broker()
    for _ in range(2):
        _publish(b, *[("x", "")] * 1000)
    assert len(_pull(b, 5000)) == 1000
    with pytest.raises(ApiError, match="max_messages"):
        b.pull(SUB, 0, True, 0)


def test_compaction_drops_acked_prefix() -> None:
    b = _broker()
    for _ in range(6):
        _publish(b, *[("x", "")] * 1000)
    for _ in range(5):
        b.acknowledge(SUB, [m.ack_id for m in _pull(b, 1000)])
    b.compact()
    t = b.topics[TOPIC]
    assert t.base == 5000 and len(t.data) == 1000
    assert len(_pull(b, 1000)) == 1000  # still deliverable after truncation


def test_retain_acked_allows_seek_back() -> None:
    b = _broker(retain_acked_messages=True)
    start = time.time()
    _publish(b, ("a", ""), ("b", ""))
    b.acknowledge(SUB, [m.ack_id for m in _pull(b)])
    b.compact()
    from google.protobuf import timestamp_pb2

    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int((start - 1) * 1e9))
    b.seek(SUB, ts, None)
    assert [m.message.data for m in _pull(b)] == [b"a", b"b"]


def test_store_replays_unacked_and_delivery_counts(tmp_path: Path) -> None:
    store = Store(tmp_path)
    b = _broker(store, dead_letter_policy={"dead_letter_topic": TOPIC, "max_delivery_attempts": 10})
    _publish(b, ("a", ""), ("b", ""), ("c", ""))
    got = _pull(b)
    b.acknowledge(SUB, [got[0].ack_id])
    with open(tmp_path / "topics" / "1.log", "ab") as fh:
        fh.write(b"\x50\x00\x00\x00torn")  # a half-written record from a killed process

    replayed = Broker(Store(tmp_path))
    replayed.store.load(replayed)
    again = list(types.PullResponse.pb().FromString(b"".join(replayed.pull(SUB, 10, True, 0))).received_messages)
    assert [m.message.data for m in again] == [b"b", b"c"]
    assert [m.delivery_attempt for m in again] == [2, 2]
    assert [m.message.message_id for m in again] == [m.message.message_id for m in got[1:]]


def test_retention_expires_unacked_backlog_and_frees_the_log(tmp_path: Path, monkeypatch) -> None:
    from services.pubsub import storage

    monkeypatch.setattr(storage, "REWRITE_BYTES", 0)  # rewrite the topic log as soon as it shrinks
    store = Store(tmp_path)
    b = _broker(store, message_retention_duration={"seconds": 600})
    _publish(b, *[(f"m{i}", "") for i in range(50)])
    leased = _pull(b, 5)
    sub, topic = b.subs[SUB], b.topics[TOPIC]
    log_path = tmp_path / "topics" / f"{topic.uid}.log"
    full = log_path.stat().st_size
    b.compact(wall=time.time() + 60)  # within retention: everything stays
    assert len(sub.unacked) == 50 and len(topic.data) == 50
    b.compact(wall=time.time() + 601)  # past retention: all 50 go, the leased ones included
    assert not sub.unacked and not sub.leased and sub.retention_expired == 50
    assert not topic.data  # the topic log in memory dropped them
    assert log_path.stat().st_size < full / 10  # and the log on disk was rewritten
    b.acknowledge(SUB, [leased[0].ack_id])  # an ack of an expired delivery is harmless
    _publish(b, ("late", ""))
    assert [m.message.data for m in _pull(b)] == [b"late"]
    assert b.stats()["subscriptions"][0]["retention_expired_total"] == 50
    store.close()
    replayed = Broker(Store(tmp_path))
    replayed.store.load(replayed)
    assert len(replayed.subs[SUB].unacked) == 1  # expired messages stay gone after a restart


def test_retention_keeps_what_is_younger() -> None:
    b = _broker(message_retention_duration={"seconds": 600})
    _publish(b, ("old", ""))
    b.compact(wall=time.time() + 599)
    assert len(b.subs[SUB].unacked) == 1 and b.subs[SUB].retention_expired == 0
