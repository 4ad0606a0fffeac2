"""Damaged logs under --data-dir: publish through google-cloud-pubsub, kill -9, damage the files, start again,
and read back through the client exactly the messages whose records are intact."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from google.api_core import exceptions
from google.pubsub_v1 import types

from services.common import prometheus
from services.pubsub import logformat
from services.pubsub import metrics as pubsub_metrics
from services.testing.pubsub import EmulatorProcess, drain, start_emulator
from tests.fixtures.diskfull import disk_full

pytestmark = [
    pytest.mark.integration,
    pytest.mark.local_only("the emulator's --data-dir store (GCP keeps messages itself)"),
    pytest.mark.filterwarnings('ignore:The "api" property:DeprecationWarning'),
]

N = 1000
PubsubMessage = types.PubsubMessage.pb()


def _publish_then_kill(tmp_path: Path) -> tuple[str, Path, Path]:
    """N messages m0..m{N-1} in one topic with one subscription, each in its own publish request; kill -9."""
    emulator = start_emulator(tmp_path, topology="none", data_dir=tmp_path / "data")
    try:
        topic, sub = emulator.topic_path("damaged"), emulator.subscription_path("damaged-sub")
        emulator.publisher().create_topic(name=topic)
        emulator.subscriber().create_subscription(name=sub, topic=topic)
        publisher = emulator.publisher()
        for f in [publisher.publish(topic, f"m{i}".encode(), i=str(i)) for i in range(N)]:
            f.result(timeout=30)
        state = json.loads((tmp_path / "data" / "state.json").read_text())
    finally:
        assert emulator.stop(kill=True) == -9
    data = tmp_path / "data"
    return (
        sub,
        data / "topics" / f"{state['topics'][0]['uid']}.log",
        data / "subs" / f"{state['subscriptions'][0]['uid']}.log",
    )


def _restart(tmp_path: Path) -> EmulatorProcess:
    return start_emulator(tmp_path, topology="none", data_dir=tmp_path / "data")


def _record_offsets(raw: bytes) -> list[int]:
    pos, out = logformat.TOPIC_HEADER_SIZE, []
    while pos + 16 <= len(raw):
        out.append(pos)
        pos += 16 + struct.unpack_from("<I", raw, pos + 4)[0]
    return out


def _scrape(emulator: EmulatorProcess) -> prometheus.Scrape:
    return prometheus.parse(httpx.get(f"{emulator.rest_url}/metrics", timeout=5).text)


def _append_zeros(topic_log: Path) -> set[int]:
    with open(topic_log, "ab") as fh:
        fh.write(bytes(8192))  # what a power cut after a kill -9 can leave
    return set()


def _message_index(raw: bytes, offset: int) -> int:
    """i of the message m<i> in the record at offset (the client may batch messages out of call order)."""
    length = struct.unpack_from("<I", raw, offset + 4)[0]
    return int(PubsubMessage.FromString(raw[offset + 16 : offset + 16 + length]).data[1:])


def _flip_middle(topic_log: Path) -> set[int]:
    raw = bytearray(topic_log.read_bytes())
    offsets = _record_offsets(bytes(raw))
    lost = {_message_index(bytes(raw), offsets[i]) for i in (100, 500)}
    for i in (100, 500):
        raw[offsets[i] + 20] ^= 0xFF
    topic_log.write_bytes(bytes(raw))
    return lost


def _truncate_mid_record(topic_log: Path) -> set[int]:
    raw = topic_log.read_bytes()
    last = _record_offsets(raw)[N - 1]
    topic_log.write_bytes(raw[: last + 7])
    return {_message_index(raw, last)}


def _garbage_tail(topic_log: Path) -> set[int]:
    with open(topic_log, "ab") as fh:
        fh.write(bytes((i * 131 + 7) % 256 for i in range(20_000)))
    return set()


DAMAGE: dict[str, Callable[[Path], set[int]]] = {
    "zeros appended": _append_zeros,
    "bytes flipped in two middle records": _flip_middle,
    "truncated inside the last record": _truncate_mid_record,
    "garbage appended": _garbage_tail,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_topic_log_gives_back_exactly_the_intact_messages(tmp_path: Path, damage: str) -> None:
    sub, topic_log, _ = _publish_then_kill(tmp_path)
    lost = DAMAGE[damage](topic_log)
    emulator = _restart(tmp_path)
    try:
        got = drain(emulator.subscriber(), sub, idle_s=1.0, limit=60)
        data = sorted(m.data for m in got)
        assert data == sorted(f"m{i}".encode() for i in range(N) if i not in lost)
        assert all(m.attributes["i"] == m.data.decode()[1:] for m in got)
        scrape = _scrape(emulator)
        torn = damage.startswith("truncated")  # a torn tail is cut, not counted as lost: it was never complete
        assert scrape.total(pubsub_metrics.STORE_LOST_MESSAGES) == (0 if torn else len(lost))
        assert (scrape.total(pubsub_metrics.STORE_SKIPPED_BYTES) or 0) > 0
        assert "log damaged" in emulator.log()
    finally:
        assert emulator.stop() == 0


def test_a_damaged_subscription_log_redelivers_rather_than_loses(tmp_path: Path) -> None:
    """Two ack batches of 50, then a byte of the last one (one checked frame of the subscription log) flipped:
    that batch's messages come back (at-least-once), the first batch stays acked, nothing unacked is lost."""
    emulator = start_emulator(tmp_path, topology="none", data_dir=tmp_path / "data")
    try:
        topic, sub = emulator.topic_path("acks"), emulator.subscription_path("acks-sub")
        emulator.publisher().create_topic(name=topic)
        client = emulator.subscriber()
        client.create_subscription(name=sub, topic=topic)
        publisher = emulator.publisher()
        for f in [publisher.publish(topic, f"m{i}".encode()) for i in range(200)]:
            f.result(timeout=30)
        first = list(client.pull(subscription=sub, max_messages=100, timeout=10).received_messages)
        assert len(first) == 100
        client.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in first[:50]])
        client.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in first[50:]])
        kept, lost_acks = {m.message.data for m in first[:50]}, {m.message.data for m in first[50:]}
        state = json.loads((tmp_path / "data" / "state.json").read_text())
    finally:
        assert emulator.stop(kill=True) == -9
    sub_log = tmp_path / "data" / "subs" / f"{state['subscriptions'][0]['uid']}.log"
    raw = bytearray(sub_log.read_bytes())
    raw[-9 * 25] ^= 0x10  # inside the last frame: the second ack batch
    sub_log.write_bytes(bytes(raw) + bytes(4096))

    emulator = _restart(tmp_path)
    try:
        got = {m.data for m in drain(emulator.subscriber(), sub, idle_s=1.0, limit=60)}
        unacked = {f"m{i}".encode() for i in range(200)} - kept - lost_acks
        assert got == unacked | lost_acks
        assert "log damaged" in emulator.log()
    finally:
        assert emulator.stop() == 0


def test_an_unreadable_state_file_does_not_stop_the_emulator(tmp_path: Path) -> None:
    _publish_then_kill(tmp_path)
    (tmp_path / "data" / "state.json").write_bytes(b"\x00garbage{")
    emulator = _restart(tmp_path)
    try:
        assert emulator.publisher().list_topics(project=f"projects/{emulator.project}") is not None
        assert list(emulator.publisher().list_topics(project=f"projects/{emulator.project}")) == []
        assert _scrape(emulator).total(pubsub_metrics.STORE_SET_ASIDE) == 1
        assert any(p.name.startswith("corrupt-") for p in (tmp_path / "data").iterdir())
    finally:
        assert emulator.stop() == 0


def test_a_full_disk_refuses_publishes_cleanly_and_recovers(tmp_path: Path) -> None:
    """The emulator's file size limit (RLIMIT_FSIZE, set on the running process) stands in for a full disk:
    writes fail with EFBIG as they would with ENOSPC."""
    emulator = start_emulator(tmp_path, topology="none", data_dir=tmp_path / "data")
    try:
        topic, sub = emulator.topic_path("full"), emulator.subscription_path("full-sub")
        emulator.publisher().create_topic(name=topic)
        emulator.subscriber().create_subscription(name=sub, topic=topic)
        accepted: list[str] = []
        with disk_full(emulator.process.pid, limit=500_000):
            with pytest.raises(exceptions.ResourceExhausted) as err:
                for _ in range(100):
                    accepted += _publish_raw(emulator, topic, 100)
            assert "cannot write its data dir" in err.value.message and 100 <= len(accepted) < 500
            assert _scrape(emulator).total(pubsub_metrics.STORE_WRITE_FAILURES) == 1
        accepted += _publish_raw(emulator, topic, 100)  # space is back
    finally:
        assert emulator.stop(kill=True) == -9
    emulator = _restart(tmp_path)
    try:
        got = drain(emulator.subscriber(), sub, idle_s=1.0, limit=60)
        assert sorted(m.message_id for m in got) == sorted(accepted)  # every accepted message, nothing refused
        assert "log damaged" not in emulator.log()  # the refused write was cut back off the log
    finally:
        assert emulator.stop() == 0


def _publish_raw(emulator: EmulatorProcess, topic: str, n: int) -> list[str]:
    """One Publish RPC of n 1 KB messages, without the client's retries."""
    messages = [types.PubsubMessage(data=b"y" * 1000) for _ in range(n)]
    return list(emulator.publisher().api.publish(topic=topic, messages=messages, retry=None, timeout=10).message_ids)
