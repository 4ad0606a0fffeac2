"""Grouped warehouse commits: several batches per commit, acknowledged only after it, drained on SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from services.warehouse.query import query
from tests.fixtures.diskfull import disk_full
from tests.services.detector.harness import Resources, publish_events, pull_all, start_detector

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ZSCORE = ("--scorer", "zscore", "--compact-interval-s", "0")


def _files(warehouse: Path, table: str) -> int:
    return len(list((warehouse / table).rglob("*.parquet")))


def test_a_commit_groups_the_rows_of_several_batches(pubsub_emulator, tmp_path):
    res = Resources(pubsub_emulator.host, pubsub_emulator.project).create()
    warehouse = tmp_path / "warehouse"
    flags = (*ZSCORE, "--detector-batch-size", "50", "--commit-interval-s", "2", "--commit-max-rows", "5000")
    det = start_detector(res, warehouse, tmp_path, *flags)
    try:
        det.wait_up()
        publish_events(res, 2000, rate=1000)  # ~50 events per loadgen tick: dozens of small batches
        assert det.wait_events(2000, 120) >= 2000, det.log()[-3000:]
        metrics = det.metrics()
    finally:
        assert det.stop() == 0, det.log()[-3000:]
    batches, commits = metrics["hyp_detector_batch_size_count"], metrics["hyp_detector_commits_total"]
    files = _files(warehouse, "dataflow")
    assert batches >= 10, metrics
    assert files == commits <= batches / 3, (files, commits, batches)
    n = query(warehouse, "SELECT count(DISTINCT message_id) AS n FROM dataflow").to_pylist()[0]["n"]
    assert n == 2000


def test_messages_are_acknowledged_only_after_the_commit_and_sigterm_commits(pubsub_emulator, tmp_path):
    res = Resources(pubsub_emulator.host, pubsub_emulator.project).create(ack_deadline=10)
    warehouse = tmp_path / "warehouse"
    # a commit only by count (never reached) or after 10 minutes: nothing is committed while the test runs
    flags = (*ZSCORE, "--ack-deadline", "10", "--commit-interval-s", "600", "--commit-max-rows", "15000")
    n = 500
    first = start_detector(res, warehouse, tmp_path, *flags)
    try:
        first.wait_up()
        publish_events(res, n, extra=("--anomaly-rate", "value_spike=0.3"))
        pending = first.wait_metric("hyp_detector_commit_pending", n, 120)
        assert pending == n, first.log()[-3000:]
        assert first.events() == 0 and _files(warehouse, "dataflow") == 0
        # detections go out at once, before the commit
        assert pull_all(res.host, res.detections_subscription, idle_s=1.0)
    finally:
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL

    second = start_detector(res, warehouse, tmp_path, *flags)
    try:
        second.wait_up()
        # none was acknowledged: all come back once the killed process's leases lapse (10 s)
        pending = second.wait_metric("hyp_detector_commit_pending", n, 120)
        assert pending == n, second.log()[-3000:]
        assert _files(warehouse, "dataflow") == 0
    finally:
        assert second.stop(signal.SIGTERM) == 0, second.log()[-3000:]  # drains: commits, acknowledges, exits 0
    row = query(warehouse, "SELECT count(*) AS rows, count(DISTINCT message_id) AS n FROM dataflow").to_pylist()[0]
    assert row == {"rows": n, "n": n}
    assert _files(warehouse, "dataflow") == 1
    # acknowledged: nothing comes back after the lease would have lapsed
    assert pull_all(res.host, res.subscription, idle_s=12.0, limit=40.0) == []


@pytest.mark.local_only("a full disk under the local process (Dataflow's workers write to BigQuery)")
def test_a_full_disk_gives_the_messages_back_and_they_are_written_once_there_is_space(pubsub_emulator, tmp_path):
    res = Resources(pubsub_emulator.host, pubsub_emulator.project).create(ack_deadline=10)
    warehouse = tmp_path / "warehouse"
    n = 300
    detector = start_detector(res, warehouse, tmp_path, *ZSCORE, "--ack-deadline", "10", "--commit-interval-s", "0.2")
    try:
        detector.wait_up()
        with disk_full(detector.process.pid, limit=1024):  # smaller than any file it writes
            publish_events(res, n)
            assert detector.wait_metric("hyp_detector_commit_failures_total", 2, 120) >= 2, detector.log()[-3000:]
            assert detector.events() == 0 and _files(warehouse, "dataflow") == 0
            assert [p for p in warehouse.rglob("*") if p.name.endswith(".tmp")] == []
        assert detector.wait_events(n, 120) == n  # given back, delivered again, written
    finally:
        assert detector.stop(signal.SIGTERM) == 0, detector.log()[-3000:]
    row = query(warehouse, "SELECT count(*) AS rows, count(DISTINCT message_id) AS n FROM dataflow").to_pylist()[0]
    assert row == {"rows": n, "n": n}
