"""Online compaction: exactly-once reads while writers write, crash safety at each step, one owner."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from services.warehouse import append, live
from services.warehouse.compaction import LOCK_NAME, STEPS, Compactor
from services.warehouse.live import committed, covers, partitions
from services.warehouse.query import connect, files, query, refresh

TABLE = "cloud_run_anomaly"
ROOT = Path(__file__).resolve().parents[3]


def rows(n: int, start: int = 0, day: int = 22) -> list[dict]:
    return [
        {
            "event_datetime": datetime(2026, 11, day, 10, 0, i % 60),
            "transaction_id": f"T{start + i}",
            "value": float(start + i),
            "message_id": str(start + i),
        }
        for i in range(n)
    ]


def counts(root: Path) -> tuple[int, int]:
    """(rows, distinct ids) as a reader sees them."""
    t = query(root, f"SELECT count(*) AS n, count(DISTINCT transaction_id) AS d FROM {TABLE}").to_pylist()[0]
    return t["n"], t["d"]


def on_disk(root: Path) -> list[str]:
    return sorted(n for p in partitions(root, TABLE) for n in os.listdir(p) if n != live.CHECKED_NAME)


def assert_no_covered_listed(root: Path) -> None:
    # covered before the listing stays covered (a merged file goes only once another covers its sources)
    covered = {n for p in partitions(root, TABLE) for name in committed(p) for n in covers(p / name)}
    listed = files(root, TABLE)
    assert not covered & {p.name for p in listed}


def test_reads_see_every_row_once_while_writers_append_and_compaction_runs(tmp_path: Path) -> None:
    batches, size = 300, 20
    errors: list[BaseException] = []
    merged_mid_write = threading.Event()

    def writer() -> None:
        try:
            for k in range(batches):
                append(tmp_path, TABLE, rows(size, start=k * size))
                if k == batches // 2:  # halfway, until the compactor has merged (bounded: no timing assumption)
                    deadline = time.monotonic() + 60
                    while len(files(tmp_path, TABLE)) > k and time.monotonic() < deadline:
                        time.sleep(0.05)
                    if len(files(tmp_path, TABLE)) <= k:
                        merged_mid_write.set()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    append(tmp_path, TABLE, rows(size, start=batches * size))  # the compactor's lock needs the folder
    compactor = Compactor(tmp_path, interval_s=0.05, grace_s=1.0, min_files=4)
    thread = threading.Thread(target=writer)
    thread.start()
    compactor.start()
    reads = []
    try:
        while thread.is_alive():
            n, d = counts(tmp_path)
            assert n == d and n % size == 0  # whole commits, never a row twice
            assert not reads or n >= reads[-1]
            reads.append(n)
            assert_no_covered_listed(tmp_path)
    finally:
        thread.join()
        compactor.stop()
    assert not errors
    total = (batches + 1) * size
    assert counts(tmp_path) == (total, total)
    assert len(reads) > 1
    assert merged_mid_write.is_set()  # merged while the writer still had commits to make
    final = Compactor(tmp_path, grace_s=0, quiet_s=0).run_once()
    assert final["live_files"] <= 2  # whole, unless one file is 8x the rest (kept, bounding rewrites)
    assert on_disk(tmp_path) == [p.name for p in files(tmp_path, TABLE)]
    assert counts(tmp_path) == (total, total)
    ids = query(tmp_path, f"SELECT transaction_id FROM {TABLE}").column(0).to_pylist()
    first = batches * size
    assert ids == [f"T{i}" for i in range(first, total)] + [f"T{i}" for i in range(first)]  # commit order


_CRASHING_RUN = """
import os, signal, sys
from services.warehouse.compaction import Compactor
step = sys.argv[2]
def on_step(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)
Compactor(sys.argv[1], grace_s=0, min_files=2, on_step=on_step).run_once()
"""


@pytest.mark.integration
@pytest.mark.parametrize("step", STEPS)
def test_kill_9_at_each_step_leaves_every_row_once_and_the_next_run_cleans_up(tmp_path: Path, step: str) -> None:
    for k in range(6):
        append(tmp_path, TABLE, rows(10, start=k * 10))
    done = subprocess.run(
        [sys.executable, "-c", _CRASHING_RUN, str(tmp_path), step], cwd=ROOT, timeout=120, capture_output=True
    )
    assert done.returncode == -9, done.stderr.decode()
    assert counts(tmp_path) == (60, 60)
    assert_no_covered_listed(tmp_path)
    if step == "temp_written":
        assert any(n.startswith(".compact-") for n in on_disk(tmp_path))
    append(tmp_path, TABLE, rows(10, start=60))  # writers go on after the crash
    assert counts(tmp_path) == (70, 70)

    result = Compactor(tmp_path, grace_s=0, quiet_s=0).run_once()
    assert result["skipped"] == 0  # the lock died with the killed process
    assert counts(tmp_path) == (70, 70)
    assert on_disk(tmp_path) == [p.name for p in files(tmp_path, TABLE)]  # no temp, no covered file left
    assert len(on_disk(tmp_path)) == 1


def test_merged_of_merged_stays_exact_whatever_is_deleted_first(tmp_path: Path) -> None:
    for k in range(4):
        append(tmp_path, TABLE, rows(5, start=k * 5))
    keep = Compactor(tmp_path, grace_s=3600, min_files=2)  # replaced files stay on disk
    assert keep.run_once()["merged"] == 1
    for k in range(4, 6):
        append(tmp_path, TABLE, rows(5, start=k * 5))
    keep.quiet_s = 0
    assert keep.run_once()["merged"] == 1  # the first merged file and the two new ones
    keep.stop()
    (partition,) = partitions(tmp_path, TABLE)
    (first,) = [n for n in committed(partition) if len(covers(partition / n)) == 4]
    assert len(committed(partition)) == 8  # 6 sources, both merged files
    (partition / first).unlink()  # a crash deleted the inner merged file before its sources
    assert counts(tmp_path) == (30, 30)
    assert len(files(tmp_path, TABLE)) == 1


def test_thousands_of_small_commits_end_as_few_files(tmp_path: Path) -> None:
    compactor = Compactor(tmp_path, grace_s=0)
    commits = 2000
    most_live = 0
    for k in range(commits):
        append(tmp_path, TABLE, rows(5, start=k * 5))
        if k % 50 == 49:
            most_live = max(most_live, compactor.run_once()["live_files"])
    compactor.stop()
    assert len(files(tmp_path, TABLE)) <= 20
    assert most_live <= 20
    assert len(on_disk(tmp_path)) == len(files(tmp_path, TABLE))
    assert counts(tmp_path) == (commits * 5, commits * 5)


def test_only_one_compactor_owns_the_warehouse(tmp_path: Path) -> None:
    for k in range(3):
        append(tmp_path, TABLE, rows(5, start=k * 5))
    first = Compactor(tmp_path, min_files=2, quiet_s=0)
    second = Compactor(tmp_path, min_files=2, quiet_s=0)
    assert first.run_once()["skipped"] == 0
    append(tmp_path, TABLE, rows(5, start=15))
    result = second.run_once()
    assert (result["skipped"], result["merged"]) == (1, 0)
    assert not second.owner
    first.stop()  # gives up ownership
    assert second.run_once()["merged"] == 1
    second.stop()


_HOLDER = """
import sys
from services.warehouse.compaction import Compactor
c = Compactor(sys.argv[1])
c.run_once()
print("owner" if c.owner else "not owner", flush=True)
sys.stdin.read()
"""


@pytest.mark.integration
def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    append(tmp_path, TABLE, rows(5))
    append(tmp_path, TABLE, rows(5, start=5))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"owner"
        mine = Compactor(tmp_path, min_files=2, quiet_s=0)
        assert mine.run_once()["skipped"] == 1
        holder.kill()
        holder.wait(timeout=30)
        assert mine.run_once()["merged"] == 1
        mine.stop()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert (tmp_path / LOCK_NAME).exists()


def test_stale_temp_files_are_removed_and_fresh_writer_temps_kept(tmp_path: Path) -> None:
    append(tmp_path, TABLE, rows(5))
    (partition,) = partitions(tmp_path, TABLE)
    crashed = partition / ".compact-0123.tmp"
    old_writer = partition / ".part-old.parquet.tmp"
    writing = partition / ".part-now.parquet.tmp"
    for p in (crashed, old_writer, writing):
        p.write_bytes(b"partial")
    os.utime(old_writer, (0, 0))
    assert Compactor(tmp_path).run_once()["temp_removed"] == 2
    assert not crashed.exists() and not old_writer.exists() and writing.exists()


def test_query_params_and_refresh_of_a_long_lived_connection(tmp_path: Path) -> None:
    append(tmp_path, TABLE, rows(3))
    sql = f"SELECT value FROM {TABLE} WHERE transaction_id = ?"
    assert query(tmp_path, sql, params=["T1"]).to_pylist() == [{"value": 1.0}]
    assert query(tmp_path, sql, params=["T1' OR '1'='1"]).num_rows == 0
    con = connect(tmp_path)
    append(tmp_path, TABLE, rows(3, start=3))
    Compactor(tmp_path, grace_s=0, min_files=2, quiet_s=0).run_once()
    refresh(con, tmp_path)
    assert con.sql(f"SELECT count(*) FROM {TABLE}").fetchall() == [(6,)]
    con.close()
