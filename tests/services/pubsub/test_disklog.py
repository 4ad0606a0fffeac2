"""With --data-dir a topic keeps its messages' places in the log, not their bytes (services/pubsub/disklog.py):
a real Broker and Store on a temporary data dir, through publish, pull, retention, rewrite and replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.pubsub import logformat, storage
from services.pubsub.broker import Broker
from services.pubsub.disklog import DiskMessages
from services.pubsub.pb import types
from services.pubsub.storage import Store
from tests.services.pubsub.test_storage import SUB, TOPIC, _pull, _reopen

pytestmark = pytest.mark.local_only("the emulator's --data-dir store (GCP keeps messages itself)")


def _publish(b: Broker, *data: bytes) -> list[str]:
    msgs = types.PublishRequest.pb()(messages=[{"data": d} for d in data]).messages
    return b.publish(TOPIC, msgs)


def _messages(b: Broker) -> DiskMessages:
    data = b.topics[TOPIC].data
    assert isinstance(data, DiskMessages)
    return data


def test_published_messages_are_offsets_read_back_from_the_log(tmp_path: Path) -> None:
    b = Broker(Store(tmp_path))
    b.create_topic(types.Topic.pb()(name=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC))
    sent = [f"message {i}".encode() * (i % 7 + 1) for i in range(300)]
    for i in range(0, 300, 100):
        _publish(b, *sent[i : i + 100])
    data = _messages(b)
    assert data.loading is None and len(data) == 300 and len(data.offsets) == 300  # no bytes held
    log = (tmp_path / "topics" / f"{b.topics[TOPIC].uid}.log").read_bytes()
    assert data.end == len(log)
    picks = [0, 1, 5, 6, 7, 299, 298, 3]  # runs of consecutive messages are one read each
    parse = types.PubsubMessage.pb().FromString
    assert [parse(blob).data for blob in data.read_many(picks)] == [sent[i] for i in picks]
    assert data.read_many(picks) == [data[i] for i in picks] and parse(data[-1]).data == sent[-1]
    assert [parse(blob).data for blob in data[2:4]] == sent[2:4]
    assert data.nbytes(10) == sum(data.lengths[:10]) == sum(len(data[i]) for i in range(10))
    got = _pull(b, n=300)
    assert [m.message.data for m in got] == sent


def test_replay_then_retention_and_rewrite_keep_every_unacked_message(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(storage, "REWRITE_BYTES", 1)  # every truncation rewrites the log
    monkeypatch.setattr(storage, "REWRITE_CHUNK", 7)  # and copies it in several chunks
    b = Broker(Store(tmp_path))
    b.create_topic(types.Topic.pb()(name=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC))
    ids = _publish(b, *[b"x%d" % i for i in range(50)])
    assert b.store is not None
    b.store.close()

    b = _reopen(tmp_path)
    data = _messages(b)
    assert data.loading is None and len(data) == 50  # replayed, rewritten, bytes dropped
    replayed = _publish(b, b"after the replay")
    first = _pull(b, n=30)
    assert [m.message.message_id for m in first] == ids[:30]
    b.acknowledge(SUB, [m.ack_id for m in first])
    t = b.topics[TOPIC]
    assert b.store is not None
    t.truncate(t.base + 30)  # what retention does once the first 30 are acked
    b.store.truncated(t)
    assert len(data) == 21 and t.retained_bytes == sum(data.lengths)
    log = (tmp_path / "topics" / f"{t.uid}.log").read_bytes()
    base, records, damage = logformat.read_topic(log)
    assert (base, len(records), bool(damage)) == (30, 21, False) and data.end == len(log)  # rewritten
    more = _publish(b, b"after the rewrite")
    rest = _pull(b, n=100)
    assert [m.message.message_id for m in rest] == ids[30:] + replayed + more
    assert rest[-1].message.data == b"after the rewrite"


def test_a_message_lost_in_a_damaged_log_reads_empty_and_is_never_delivered(tmp_path: Path) -> None:
    b = Broker(Store(tmp_path))
    b.create_topic(types.Topic.pb()(name=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC))
    ids = _publish(b, b"first", b"second", b"third")
    path = tmp_path / "topics" / f"{b.topics[TOPIC].uid}.log"
    assert b.store is not None
    b.store.close()
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"second")] ^= 0xFF  # the middle record no longer checks
    path.write_bytes(bytes(raw))

    b = _reopen(tmp_path)
    data = _messages(b)
    assert data.loading is None and list(data.lengths)[1] == 0 and data[1] == b""
    assert [m.message.message_id for m in _pull(b)] == [ids[0], ids[2]]


def test_a_topic_without_messages_keeps_places_not_bytes_after_a_restart(tmp_path: Path) -> None:
    b = Broker(Store(tmp_path))
    b.create_topic(types.Topic.pb()(name=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC))
    assert b.store is not None
    b.store.close()
    b = _reopen(tmp_path)  # no log file yet: nothing to scan, nothing rewritten
    _publish(b, b"one", b"two")
    data = _messages(b)
    assert data.loading is None and list(data.lengths) == [len(data[0]), len(data[1])]
    assert [m.message.data for m in _pull(b, n=2)] == [b"one", b"two"]
    assert b.store is not None
    b.store.close()
    b = _reopen(tmp_path)  # a clean log: used in place
    assert _messages(b).loading is None and [m.message.data for m in _pull(b, n=2)] == [b"one", b"two"]
