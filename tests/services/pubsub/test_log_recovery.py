"""Replay of damaged and old-format logs: a real Broker and Store on a temporary data dir, bytes damaged by hand."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from google.pubsub_v1 import types

from services.pubsub import logformat
from services.pubsub.broker import Broker
from services.pubsub.storage import Store

pytestmark = pytest.mark.local_only("the emulator's --data-dir store (GCP keeps messages itself)")

TOPIC = "projects/p1-test/topics/topic-a"
SUB = "projects/p1-test/subscriptions/sub-a"


def _fill(data_dir: Path, n: int = 20) -> tuple[Path, Path]:
    """A topic and subscription with n messages m0..m{n-1}, nothing acked; returns (topic log, sub log)."""
    b = Broker(Store(data_dir))
    b.create_topic(types.Topic.pb()(name=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC))
    for i in range(n):  # one record per publish request
        b.publish(TOPIC, types.PublishRequest.pb()(messages=[{"data": f"m{i}".encode()}]).messages)
    assert b.store is not None
    b.store.close()
    return data_dir / "topics" / f"{b.topics[TOPIC].uid}.log", data_dir / "subs" / f"{b.subs[SUB].uid}.log"


def _reopen(data_dir: Path) -> tuple[Broker, Store]:
    store = Store(data_dir)
    b = Broker(store)
    store.load(b)
    return b, store


def _backlog(b: Broker) -> list[bytes]:
    raw = b"".join(b.pull(SUB, 1000, True, 0))
    return [m.message.data for m in types.PullResponse.pb().FromString(raw).received_messages]


def _offsets(raw: bytes) -> list[int]:
    """Offsets of the records of a good v2 topic log."""
    pos, out = logformat.TOPIC_HEADER_SIZE, []
    while pos < len(raw):
        out.append(pos)
        (length,) = struct.unpack_from("<I", raw, pos + 4)
        pos += 16 + length
    return out


def _all(n: int = 20, but: tuple[int, ...] = ()) -> list[bytes]:
    return [f"m{i}".encode() for i in range(n) if i not in but]


def test_zeros_after_the_last_record_are_cut_not_replayed(tmp_path: Path) -> None:
    topic_log, sub_log = _fill(tmp_path)
    for path in (topic_log, sub_log):
        with open(path, "ab") as fh:
            fh.write(bytes(8192))  # what a power cut can leave after a kill -9
    b, store = _reopen(tmp_path)
    assert _backlog(b) == _all()
    assert store.report()["lost_messages"] == 0
    assert dict(((e["log"], e["where"]), e["bytes"]) for e in store.report()["skipped_bytes"]) == {
        ("topic", "tail"): 8192,
        ("subscription", "tail"): 8192,
    }
    b2, store2 = _reopen(tmp_path)  # the cut logs were rewritten: a second start finds nothing to report
    assert _backlog(b2) == _all() and store2.report()["skipped_bytes"] == []


def test_a_flipped_byte_in_a_middle_record_loses_that_message_only_and_says_so(tmp_path: Path) -> None:
    topic_log, _ = _fill(tmp_path)
    raw = bytearray(topic_log.read_bytes())
    raw[_offsets(bytes(raw))[7] + 18] ^= 0x40  # inside message 7's bytes
    topic_log.write_bytes(bytes(raw))
    b, store = _reopen(tmp_path)
    assert _backlog(b) == _all(but=(7,))
    report = store.report()
    assert report["lost_messages"] == 1
    assert report["skipped_bytes"][0]["where"] == "middle"
    _, store2 = _reopen(tmp_path)  # reported once: the loss is recorded in the rewritten log
    assert store2.report()["lost_messages"] == 0


def test_a_corrupted_length_skips_to_the_next_good_record(tmp_path: Path) -> None:
    topic_log, _ = _fill(tmp_path)
    raw = bytearray(topic_log.read_bytes())
    struct.pack_into("<I", raw, _offsets(bytes(raw))[3] + 4, 5)  # message 3 claims 5 bytes
    topic_log.write_bytes(bytes(raw))
    b, store = _reopen(tmp_path)
    assert _backlog(b) == _all(but=(3,)) and store.report()["lost_messages"] == 1


def test_a_torn_last_record_is_dropped(tmp_path: Path) -> None:
    topic_log, _ = _fill(tmp_path)
    raw = topic_log.read_bytes()
    topic_log.write_bytes(raw[: _offsets(raw)[19] + 10])
    b, _ = _reopen(tmp_path)
    assert _backlog(b) == _all(19)
    b.publish(TOPIC, types.PublishRequest.pb()(messages=[{"data": b"after"}]).messages)
    assert _backlog(b) == [b"after"]


def test_garbage_never_stops_a_start(tmp_path: Path) -> None:
    topic_log, sub_log = _fill(tmp_path)
    garbage = bytes(range(256)) * 40
    raw = topic_log.read_bytes()
    middle = _offsets(raw)[10]
    topic_log.write_bytes(raw[:middle] + garbage + raw[middle:] + garbage)
    sub_log.write_bytes(sub_log.read_bytes()[:-3] + garbage)
    b, store = _reopen(tmp_path)
    assert _backlog(b) == _all()
    where = {e["where"] for e in store.report()["skipped_bytes"]}
    assert where == {"middle", "tail"}


def test_an_unreadable_state_file_is_set_aside_and_the_emulator_starts_empty(tmp_path: Path) -> None:
    _fill(tmp_path)
    (tmp_path / "state.json").write_bytes(b'{"version": 1, "topics": [\x00\x00')
    b, store = _reopen(tmp_path)
    assert b.topics == {} and store.report()["set_aside"] == 1
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("corrupt-")]
    assert len(aside) == 1 and (aside[0] / "state.json").exists() and list((aside[0] / "topics").iterdir())
    b.create_topic(types.Topic.pb()(name=TOPIC))  # and works on
    assert _reopen(tmp_path)[0].topics.keys() == {TOPIC}


def _to_v1(topic_log: Path, sub_log: Path) -> None:
    """Rewrite v2 logs as the emulator wrote them before checksums."""
    base, records, _ = logformat.read_topic(topic_log.read_bytes())
    topic_log.write_bytes(struct.pack("<q", base or 0) + b"".join(struct.pack("<I", len(b)) + b for _, b in records))
    kinds, _ = logformat.read_sub(sub_log.read_bytes())
    sub_log.write_bytes(b"".join(struct.pack("<Bq", k, s) for k, s in kinds))


def test_old_format_logs_replay_and_are_rewritten_with_checksums(tmp_path: Path) -> None:
    topic_log, sub_log = _fill(tmp_path)
    b = Broker(Store(tmp_path))
    assert b.store is not None
    b.store.load(b)
    got = types.PullResponse.pb().FromString(b"".join(b.pull(SUB, 5, True, 0))).received_messages
    b.acknowledge(SUB, [m.ack_id for m in got])  # m0..m4 acked
    b.store.close()
    _to_v1(topic_log, sub_log)
    with open(topic_log, "ab") as fh:
        fh.write(bytes(4096))  # the phantom-message case of the old format: zeros were empty records
    assert not topic_log.read_bytes().startswith(logformat.TOPIC_MAGIC)

    b, store = _reopen(tmp_path)
    assert _backlog(b) == _all()[5:]
    assert store.report()["migrated_logs"] == 2
    assert topic_log.read_bytes().startswith(logformat.TOPIC_MAGIC)
    assert sub_log.read_bytes().startswith(logformat.SUB_MAGIC)
    state = json.loads((tmp_path / "state.json").read_text())
    assert [t["pb"]["name"] for t in state["topics"]] == [TOPIC]


def test_a_seek_never_brings_back_a_lost_message(tmp_path: Path) -> None:
    topic_log, _ = _fill(tmp_path)
    raw = bytearray(topic_log.read_bytes())
    raw[_offsets(bytes(raw))[2] + 18] ^= 0x01
    topic_log.write_bytes(bytes(raw))
    b, _ = _reopen(tmp_path)
    assert _backlog(b) == _all(but=(2,))
    ts = types.SeekRequest.pb()().time
    ts.FromSeconds(0)
    b.seek(SUB, ts, None)
    assert _backlog(b) == _all(but=(2,))
