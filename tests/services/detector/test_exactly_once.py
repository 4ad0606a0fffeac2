"""Exactly once in both detector tables: a process killed at any point of a commit, then the commit replayed.

The crash points are real process exits (``os._exit`` at a test-only hook in journal.py, as a kill -9 stops a
process: nothing flushed, no handler run); the replay is what Pub/Sub's redelivery makes the next process do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services.detector import records, sinks
from services.detector.journal import CRASH_ENV, CRASH_POINTS, CommitJournal
from services.warehouse.query import query
from services.warehouse.tables import DETECTOR_TABLE, DETECTOR_VERDICTS
from tests.services.detector.harness import REPO, Resources, publish_events, start_detector
from tests.services.detector.helpers import batch, message, purchase_event, view_event

pytestmark = pytest.mark.local_only("the local read's commit journal (Dataflow deduplicates in its own shuffle)")

# A commit of two batches (30 messages, 10 of them purchases), as the committer hands it to the warehouse.
COMMIT = """
from services.detector import records, sinks
from services.detector.journal import CommitJournal
from tests.services.detector.helpers import batch, message, purchase_event, view_event


def scored(first, n):
    events = [purchase_event(first + i) if i % 3 == 0 else view_event(first + i) for i in range(n)]
    parsed = records.parse_batch(batch(*(message(first + i, e, anomaly="0") for i, e in enumerate(events))))
    verdicts = tuple({"score": 0.5, "is_anomaly": False, "model_version": "7"} for _ in parsed.purchase_index)
    return parsed.replace(verdicts=verdicts, model_version="7")


BATCHES = [scored(0, 15), scored(100, 15)]
"""


def _batches():
    namespace: dict = {}
    exec(COMMIT, namespace)  # the same batches as the child process's
    return namespace["BATCHES"]


def _rows(warehouse: Path, table: str) -> tuple[int, int]:
    row = query(warehouse, f"SELECT count(*) AS n, count(DISTINCT message_id) AS d FROM {table}").to_pylist()[0]
    return row["n"], row["d"]


def _crashed_commit(warehouse: Path, point: str) -> subprocess.CompletedProcess:
    code = COMMIT + textwrap.dedent(
        f"""
        journal = CommitJournal({str(warehouse)!r}, "w")
        sinks.write_warehouse_many({str(warehouse)!r}, BATCHES, journal)
        print("committed without a crash")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), CRASH_ENV: point}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_commit_killed_at_any_point_then_replayed_leaves_each_row_once(tmp_path, point):
    warehouse = tmp_path / "warehouse"
    done = _crashed_commit(warehouse, point)
    assert done.returncode == 137, done.stdout + done.stderr
    # what the crash left: the events' file renamed in every case but the first; the verdicts' only before the ack
    visible = {"after_record": (0, 0), "between_tables": (30, 0), "before_ack": (30, 10)}[point]
    events = _rows(warehouse, DETECTOR_TABLE)[0] if (warehouse / DETECTOR_TABLE).exists() else 0
    verdicts = _rows(warehouse, DETECTOR_VERDICTS)[0] if (warehouse / DETECTOR_VERDICTS).exists() else 0
    assert (events, verdicts) == visible

    journal = CommitJournal(warehouse, "w")  # the next start of the same worker: finishes the commit
    assert journal.recovered_files == {"after_record": 2, "between_tables": 1, "before_ack": 0}[point]
    replayed = sinks.write_warehouse_many(str(warehouse), _batches(), journal)  # every message redelivered
    assert [len(b.events) for b in replayed] == [0, 0] and journal.skipped == 30
    assert sum(len(b.ack_ids) for b in replayed) == 30  # still acknowledged, every one
    journal.close()
    assert _rows(warehouse, DETECTOR_TABLE) == (30, 30)
    assert _rows(warehouse, DETECTOR_VERDICTS) == (10, 10)


def test_without_a_journal_the_same_replay_duplicates(tmp_path):
    """The failure the journal prevents, shown with the same crash point and replay (no journal on replay)."""
    warehouse = tmp_path / "warehouse"
    assert _crashed_commit(warehouse, "between_tables").returncode == 137
    sinks.write_warehouse_many(str(warehouse), _batches())
    assert _rows(warehouse, DETECTOR_TABLE) == (60, 30)


def test_a_message_twice_in_one_commit_or_again_later_is_written_once(tmp_path):
    """A lease that lapsed while the process was starved: the same message pulled twice, by this process."""
    journal = CommitJournal(tmp_path, "w")
    first = records.parse_batch(batch(*(message(i, view_event(i)) for i in range(5))))
    again = records.parse_batch(batch(*(message(i, view_event(i)) for i in range(3, 8))))  # m3, m4 twice
    sinks.write_warehouse_many(str(tmp_path), [first, again], journal)
    sinks.write_warehouse_many(str(tmp_path), [again], journal)  # all five already committed
    purchase = records.parse_batch(batch(message(50, purchase_event(50))))
    scored = purchase.replace(verdicts=({"score": 0.1, "is_anomaly": False, "model_version": "1"},))
    sinks.write_warehouse_many(str(tmp_path), [scored, scored], journal)
    journal.close()
    assert _rows(tmp_path, DETECTOR_TABLE) == (9, 9)
    assert _rows(tmp_path, DETECTOR_VERDICTS) == (1, 1)
    assert journal.skipped == 2 + 5 + 1


def test_a_torn_record_is_no_commit_and_the_journal_is_kept_small(tmp_path):
    journal = CommitJournal(tmp_path, "w", retain_s=0.0)
    sinks.write_warehouse_many(str(tmp_path), [records.parse_batch(batch(message(1, view_event(1))))], journal)
    assert not journal.seen("m1")  # retained for 0 s
    journal.close()
    with open(journal.path, "ab") as fh:
        fh.write(b'{"t":1,"ids":["m9"],"files":[["dataflow/x')  # killed while writing the line
    again = CommitJournal(tmp_path, "w")
    assert not again.seen("m9") and again.recovered_files == 0
    assert again.seen("m1")  # loaded at the start: retained from it, whatever its age
    again.close()
    lines = journal.path.read_bytes().splitlines()  # rewritten at the start: the retained ids, no torn line
    assert len(lines) == 1 and b'"ids":["m1"]' in lines[0]


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_the_detector_killed_between_its_two_tables_then_restarted_writes_each_row_once(pubsub_emulator, tmp_path):
    res = Resources(pubsub_emulator.host, pubsub_emulator.project).create(ack_deadline=10)
    warehouse = tmp_path / "warehouse"
    flags = ("--scorer", "zscore", "--ack-deadline", "10", "--commit-interval-s", "2", "--compact-interval-s", "0")
    n = 600
    first = start_detector(res, warehouse, tmp_path, *flags, env={CRASH_ENV: "between_tables"})
    try:
        first.wait_up()
        publish_events(res, n, extra=("--anomaly-rate", "value_spike=0.2"))
        assert first.process.wait(120) == 137, first.log()[-3000:]  # its first commit with verdicts
    finally:
        first.stop(signal.SIGKILL)
    assert "test crash point between_tables" in first.log()
    events, _ = _rows(warehouse, DETECTOR_TABLE)
    assert events > 0 and not list((warehouse / DETECTOR_VERDICTS).rglob("*.parquet"))  # one table only

    second = start_detector(res, warehouse, tmp_path, *flags)
    try:
        second.wait_up()
        # every message comes back (none was acknowledged) once the killed process's leases lapse (10 s)
        assert second.wait_events(n, 120) >= n, second.log()[-3000:]
    finally:
        assert second.stop() == 0, second.log()[-3000:]
    assert _rows(warehouse, DETECTOR_TABLE) == (n, n)
    purchases = query(
        warehouse, f"SELECT count(DISTINCT message_id) AS n FROM {DETECTOR_TABLE} WHERE event = 'purchase'"
    ).to_pylist()[0]["n"]
    assert purchases > 0 and _rows(warehouse, DETECTOR_VERDICTS) == (purchases, purchases)
    assert "renamed into place" in second.log()  # the verdicts' file, by the second start
