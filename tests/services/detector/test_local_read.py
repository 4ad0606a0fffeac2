"""The local read on BundleBasedDirectRunner: Beam's internals it relies on, batching, ack after downstream, drain."""

from __future__ import annotations

import threading
import time

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from services.common.processes import wait_for
from services.detector import local_read
from services.detector.batch import Batch, Message
from tests.services.detector.helpers import FAKES, FakeSubscriber, fake_client


def test_beam_internals_are_where_the_read_expects_them():
    # Fails loudly when a Beam upgrade moves the direct runner's evaluator hooks: update local_read.py.
    local_read.check_beam_internals()


def test_version_mismatch_is_reported(monkeypatch):
    monkeypatch.setattr(beam, "__version__", "9.9.9")
    with pytest.raises(local_read.BeamInternalsChanged, match=r"9\.9\.9"):
        local_read.check_beam_internals()


class _RecordAckState(beam.DoFn):
    """Downstream stage: notes, per batch, how many of its messages were already acknowledged."""

    seen: list[tuple[int, int]] = []

    def __init__(self, key: str) -> None:
        self.key = key

    def process(self, batch: Batch):
        fake = FAKES[self.key]
        with fake.lock:
            early = sum(1 for a in batch.ack_ids if a in fake.acked)
        _RecordAckState.seen.append((len(batch), early))
        yield batch


@pytest.mark.timeout(120)
def test_streams_batches_acks_after_downstream_and_drains():
    key, n = "read-test", 12_000
    FAKES[key] = fake = FakeSubscriber(n)
    _RecordAckState.seen = []
    config = local_read.SubscriptionConfig(
        "projects/p/subscriptions/s", key, max_messages=1000, max_outstanding=4000, client_factory=fake_client
    )
    p = beam.Pipeline(options=PipelineOptions(["--runner=BundleBasedDirectRunner", "--streaming"]))
    _ = (
        p
        | local_read.ReadPubSubBatches(config, batch_size=1500)
        | beam.ParDo(_RecordAckState(key))
        | beam.ParDo(local_read.AcknowledgeFn(config))
    )
    result = p.run()
    try:
        wait_for(lambda: len(fake.acked) >= n, 90, f"all {n} messages acknowledged", interval=0.05)
    finally:
        local_read.stop_all()
    done = threading.Event()
    threading.Thread(target=lambda: (result.wait_until_finish(), done.set()), daemon=True).start()
    try:
        assert done.wait(30), "the pipeline did not finish after stop_all (drain)"
        assert result.state == "DONE"
        assert fake.acked == {f"a{j}" for j in range(n)}
        sizes = [size for size, _ in _RecordAckState.seen]
        assert sum(sizes) == n and max(sizes) <= 1500
        assert max(sizes) > 10, "the read should hand out large batches, not the stock 10 per bundle"
        assert all(early == 0 for _, early in _RecordAckState.seen), "a message was acked before downstream ran"
    finally:
        local_read.close_all()
        FAKES.pop(key, None)


def test_flow_control_stops_pulling_at_max_outstanding():
    key = "flow-test"
    FAKES[key] = FakeSubscriber(10_000)
    config = local_read.SubscriptionConfig(
        "projects/p/subscriptions/s", key, max_messages=500, max_outstanding=1000, client_factory=fake_client
    )
    sub = local_read.LocalSubscription(config).start()
    try:
        wait_for(lambda: sub.pulled >= 1000, 10, "1000 messages pulled", interval=0.01)
        time.sleep(0.2)  # give the loop time to overshoot, if it would
        assert sub.pulled == 1000 and sub.outstanding == 1000
        taken = sub.take(600)
        sub.acknowledge([m.ack_id for m in taken])
        wait_for(lambda: sub.pulled >= 1600, 10, "1600 messages pulled", interval=0.01)
        assert sub.pulled == 1600 and sub.outstanding == 1000
    finally:
        sub.close()
        FAKES.pop(key, None)


def test_take_lingers_for_a_fuller_batch_and_no_longer_than_asked():
    FAKES["linger-test"] = FakeSubscriber(0)
    config = local_read.SubscriptionConfig("projects/p/subscriptions/s", "linger-test", client_factory=fake_client)
    sub = local_read.LocalSubscription(config)  # not started: the test feeds its buffer as the pull thread would
    try:
        _linger_checks(sub)
    finally:
        FAKES.pop("linger-test", None)


def _linger_checks(sub: local_read.LocalSubscription) -> None:

    def put(*ids: str) -> None:
        with sub._cond:
            sub._buffer.extend(Message(b"{}", {}, i, 0, f"ack-{i}") for i in ids)
            sub._cond.notify_all()

    put("1")
    assert [m.message_id for m in sub.take(10)] == ["1"]  # no linger: what is there

    put("2")
    threading.Timer(0.05, put, args=("3",)).start()
    t0 = time.monotonic()
    taken = sub.take(10, wait_s=1.0, linger_s=0.5)
    waited = time.monotonic() - t0
    assert [m.message_id for m in taken] == ["2", "3"]  # the later message joined the batch
    assert 0.45 <= waited < 2.0  # the batch never filled: it waited the linger out, and no more

    put("4")
    threading.Timer(0.05, put, args=("5",)).start()
    t0 = time.monotonic()
    taken = sub.take(2, wait_s=1.0, linger_s=5.0)
    assert [m.message_id for m in taken] == ["4", "5"]
    assert time.monotonic() - t0 < 2.0  # a full batch leaves at once, long before the linger


@pytest.mark.timeout(120)
def test_an_idle_read_keeps_no_bundle_and_leaks_no_model_status(monkeypatch):
    """Round 23's soak leaks (tracemalloc on the detector): every idle evaluation's empty rescheduling bundle
    stayed in the read's pending set, and RunInference's model status took a new Shared key per bundle."""
    from apache_beam.ml.inference import base
    from apache_beam.runners.direct import watermark_manager as wm
    from apache_beam.utils import shared

    watched: list[wm._TransformWatermarks] = []
    adds = [0]
    original_add = wm._TransformWatermarks.add_pending

    def add_pending(self, pending):
        adds[0] += 1
        if self not in watched:
            watched.append(self)
        original_add(self, pending)

    monkeypatch.setattr(wm._TransformWatermarks, "add_pending", add_pending)
    key, n = "idle-read-test", 50
    FAKES[key] = fake = FakeSubscriber(n)
    config = local_read.SubscriptionConfig(
        "projects/p/subscriptions/idle", key, max_messages=100, max_outstanding=1000, client_factory=fake_client
    )
    p = beam.Pipeline(options=PipelineOptions(["--runner=BundleBasedDirectRunner", "--streaming"]))
    _ = (
        p
        | local_read.ReadPubSubBatches(config, batch_size=100, poll_wait_s=0.005)
        | beam.ParDo(local_read.AcknowledgeFn(config))
    )
    result = p.run()
    try:
        wait_for(lambda: len(fake.acked) >= n, 60, f"all {n} messages acknowledged", interval=0.05)
        before = adds[0]
        wait_for(lambda: adds[0] - before >= 200, 60, "200 idle evaluations", interval=0.05)
        assert max(len(tw._pending) for tw in watched) <= 3, "the read keeps the empty bundles it consumed"
    finally:
        local_read.stop_all()
        result.wait_until_finish()
        local_read.close_all()
        FAKES.pop(key, None)

    keys = len(shared._shared_map._cache_map)
    statuses = {id(base.load_model_status("idle-test-model", False)) for _ in range(50)}
    assert len(shared._shared_map._cache_map) <= keys + 1, "a Shared key per setup"
    assert len(statuses) == 1
