"""The subscription's compact structures: the unacked bitmap (SeqSet) and delivery from a cursor plus a redo heap."""

from __future__ import annotations

import random
from typing import Any

from services.pubsub.broker import Broker
from services.pubsub.pb import types
from services.pubsub.seqset import SeqSet
from services.pubsub.topic import Runs

TOPIC = "projects/proj/topics/topic-a"
SUB = "projects/proj/subscriptions/sub-a"


def test_acks_punch_holes_and_scans_find_members_and_gaps() -> None:
    s = SeqSet.from_range(100, 1100)
    assert len(s) == 1000 and s.min() == 100 and 1099 in s and 1100 not in s and 99 not in s
    for seq in (100, 101, 500, 1099):
        assert s.discard(seq)
    assert not s.discard(500)  # already gone
    assert len(s) == 996 and s.min() == 102
    assert list(s.gaps(98, 104)) == [98, 99, 100, 101]
    assert list(s.gaps(400, 1101)) == [500, 1099, 1100]
    assert s.first(500) == 501 and s.first(1099) is None
    assert s.count_range(100, 200) == 98 and s.count_from(0, 10) == 10


def test_ranges_merge_across_bytes_and_the_drained_prefix_is_dropped() -> None:
    s = SeqSet()
    s.add_range(3, 10)
    s.add_range(10, 21)  # adjacent: one run
    s.add_range(5, 15)  # overlapping: counted once
    assert len(s) == 18 and list(s) == list(range(3, 21))
    for seq in range(3, 19):
        s.discard(seq)
    s.add_range(10_000_000, 10_000_005)
    before = s.nbytes()
    s.trim()
    assert s.nbytes() < before and list(s) == [19, 20, *range(10_000_000, 10_000_005)]
    s.discard(19)
    s.discard(20)
    s.trim()
    assert s.nbytes() == 1 and s.min() == 10_000_000


def test_matches_a_python_set_under_random_adds_and_acks() -> None:
    rng = random.Random(18)
    s, ref = SeqSet(), set[int]()
    top = 0
    for _ in range(3000):
        op = rng.random()
        if op < 0.3:
            n = rng.randint(1, 40)
            s.add_range(top, top + n)
            ref.update(range(top, top + n))
            top += n
        elif op < 0.9 and ref:
            seq = rng.choice(sorted(ref)[:50])  # acks mostly near the front, out of order
            assert s.discard(seq) and seq not in s
            ref.discard(seq)
        else:
            s.trim()
        assert len(s) == len(ref)
        assert s.min() == (min(ref) if ref else None)
    assert list(s) == sorted(ref)
    lo = min(ref, default=0)
    assert list(s.gaps(lo, top)) == [x for x in range(lo, top) if x not in ref]
    assert s.count_range(lo, top) == len(ref)


def test_runs_store_publish_times_and_keys_as_runs_and_match_a_list() -> None:
    rng = random.Random(7)
    runs, ref = Runs(), list[float]()
    added = 0  # values grow with everything ever appended (publish times never decrease)
    for _ in range(500):
        op = rng.random()
        if op < 0.5:
            v, n = float(added // 50), rng.randint(1, 30)
            runs.add(v, n)
            ref += [v] * n
            added += n
        elif op < 0.8:
            vals = [float(added // 50)] * rng.randint(0, 5)
            runs.extend(vals)
            ref += vals
            added += len(vals)
        else:
            drop = rng.randint(0, len(ref))
            del runs[:drop]
            del ref[:drop]
        assert len(runs) == len(ref)
    assert [runs[i] for i in range(len(ref))] == ref
    assert runs.runs() <= len(set(ref)) + 1
    for v in {*ref, -1.0, 1e9}:
        want = next((i for i, x in enumerate(ref) if x >= v), len(ref))
        assert runs.bisect_left(v) == want
    keys = Runs()
    keys.extend(["", "", "k1", "k1", "k2", ""])
    assert [keys[i] for i in range(6)] == ["", "", "k1", "k1", "k2", ""] and keys.runs() == 4
    del keys[:3]
    assert [keys[i] for i in range(3)] == ["k1", "k2", ""] and keys[-1] == ""


def _broker(**sub_fields: object) -> Broker:
    b = Broker()
    b.create_topic(types.Topic.pb()(name=TOPIC))
    b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC, ack_deadline_seconds=10, **sub_fields))
    return b


def _pull(b: Broker, n: int) -> list[Any]:
    raw = b"".join(b.pull(SUB, n, True, 0))
    return list(types.PullResponse.pb().FromString(raw).received_messages)


def test_redelivery_comes_before_new_messages_and_acked_ones_never_come_back() -> None:
    b = _broker()
    b.publish(TOPIC, types.PublishRequest.pb()(messages=[{"data": b"m%d" % i} for i in range(10)]).messages)
    first = _pull(b, 4)
    assert [m.message.data for m in first] == [b"m0", b"m1", b"m2", b"m3"]
    b.acknowledge(SUB, [first[0].ack_id, first[2].ack_id])
    b.modify_ack_deadline(SUB, [first[3].ack_id, first[1].ack_id], 0)  # nack, out of order
    sub = b.subs[SUB]
    assert sub.cursor == 4 and sorted(sub.redo) == [1, 3]  # only handed-out messages cost a heap slot
    again = _pull(b, 3)
    assert [m.message.data for m in again] == [b"m1", b"m3", b"m4"]  # the lower redelivered ones first
    rest = _pull(b, 100)
    assert [m.message.data for m in rest] == [b"m%d" % i for i in range(5, 10)]
    b.acknowledge(SUB, [m.ack_id for m in again + rest])
    assert len(sub.unacked) == 0 and not sub.leased and not _pull(b, 10)
    assert b.stats()["subscriptions"][0]["backlog"] == 0


def test_ordering_key_waits_in_the_redo_heap_and_keeps_order() -> None:
    b = _broker(enable_message_ordering=True)
    msgs = [{"data": b"%s%d" % (k, i), "ordering_key": k.decode()} for i in range(3) for k in (b"a", b"b")]
    b.publish(TOPIC, types.PublishRequest.pb()(messages=msgs).messages)
    one = _pull(b, 1)  # a0: key a busy
    assert [m.message.data for m in one] == [b"a0"]
    two = _pull(b, 10)  # b's messages, a's later ones wait (in redo)
    assert [m.message.data for m in two] == [b"b0", b"b1", b"b2"]
    b.modify_ack_deadline(SUB, [one[0].ack_id], 0)
    three = _pull(b, 10)
    assert [m.message.data for m in three] == [b"a0", b"a1", b"a2"]


def test_dead_lettering_counts_attempts_with_the_bitmap() -> None:
    b = _broker(dead_letter_policy={"dead_letter_topic": "projects/proj/topics/dead-l", "max_delivery_attempts": 5})
    b.create_topic(types.Topic.pb()(name="projects/proj/topics/dead-l"))
    b.create_subscription(
        types.Subscription.pb()(name="projects/proj/subscriptions/dead-l", topic="projects/proj/topics/dead-l")
    )
    b.publish(TOPIC, types.PublishRequest.pb()(messages=[{"data": b"x"}]).messages)
    for attempt in range(1, 6):
        got = _pull(b, 1)
        assert [m.delivery_attempt for m in got] == [attempt]
        b.modify_ack_deadline(SUB, [got[0].ack_id], 0)
    assert not _pull(b, 1) and len(b.subs[SUB].unacked) == 0 and b.subs[SUB].dead_lettered == 1
    dl = b.subs["projects/proj/subscriptions/dead-l"]
    assert len(dl.unacked) == 1
