"""The store against a real Broker on a temporary data dir: the on-disk record kinds and the restore API."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.pubsub_v1 import types

from services.pubsub import logformat
from services.pubsub.broker import Broker
from services.pubsub.records import Record
from services.pubsub.storage import Store

pytestmark = pytest.mark.local_only("the emulator's --data-dir store (GCP keeps messages itself)")

TOPIC = "projects/p1-test/topics/topic-a"
SUB = "projects/p1-test/subscriptions/sub-a"
OTHER = "projects/p1-test/subscriptions/sub-b"


def _publish(b: Broker, *data: str) -> list[str]:
    msgs = types.PublishRequest.pb()(messages=[{"data": d.encode()} for d in data]).messages
    return b.publish(TOPIC, msgs)


def _pull(b: Broker, name: str = SUB, n: int = 100) -> list:
    return list(types.PullResponse.pb().FromString(b"".join(b.pull(name, n, True, 0))).received_messages)


def _reopen(data_dir: Path) -> Broker:
    b = Broker(Store(data_dir))
    assert b.store is not None
    b.store.load(b)
    return b


def test_subscription_log_holds_the_record_letters(tmp_path: Path) -> None:
    b = Broker(Store(tmp_path))
    b.create_topic(types.Topic.pb()(name=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC))
    _publish(b, "a", "b")
    got = _pull(b)
    b.acknowledge(SUB, [got[0].ack_id])
    raw = (tmp_path / "subs" / f"{b.subs[SUB].uid}.log").read_bytes()
    records, damage = logformat.read_sub(raw)
    kinds = [kind for kind, _seq in records]
    assert kinds == [Record.WATERMARK, Record.DELIVERED, Record.DELIVERED, Record.ACKED] and not damage
    assert bytes(kinds) == b"WDDA"  # the letters logs of earlier versions hold: old data dirs replay
    assert raw.startswith(logformat.SUB_MAGIC) and len(raw) == len(logformat.SUB_MAGIC) + 3 * 8 + 4 * 9  # 3 writes


def test_replay_never_reuses_a_uid_or_a_message_id(tmp_path: Path) -> None:
    b = Broker(Store(tmp_path))
    b.create_topic(types.Topic.pb()(name=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=OTHER, topic=TOPIC))
    used = {b.topics[TOPIC].uid, b.subs[SUB].uid, b.subs[OTHER].uid}
    b.delete_subscription(OTHER)  # its uid is gone from state.json but must not name a new log
    old_ids = _publish(b, "a", "b")

    again = _reopen(tmp_path)
    again.create_subscription(types.Subscription.pb()(name=OTHER, topic=TOPIC))
    assert again.subs[OTHER].uid not in used
    new_ids = _publish(again, "c")
    assert int(new_ids[0]) > max(map(int, old_ids))
    assert [m.message.data for m in _pull(again)] == [b"a", b"b", b"c"]
    assert [m.message.data for m in _pull(again, OTHER)] == [b"c"]


def test_replay_restores_detached_subscriptions_and_deleted_topics_as_such(tmp_path: Path) -> None:
    b = Broker(Store(tmp_path))
    b.create_topic(types.Topic.pb()(name=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=OTHER, topic=TOPIC))
    b.detach_subscription(OTHER)
    b.delete_topic(TOPIC)

    again = _reopen(tmp_path)
    assert TOPIC not in again.topics
    assert set(again.subs) == {SUB, OTHER}
    assert again.subs[OTHER].pb.detached
    assert list(again.subs[SUB].topic.subs) == [SUB]  # a detached subscription gets nothing more
    assert again.get_subscription(SUB).topic == "_deleted-topic_"
