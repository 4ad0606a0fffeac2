"""Warehouse: count(*) and a GROUP BY over an hour of small commits, before and after online compaction;
or the detector's commit (its events and verdicts tables) in events per second.

    .venv/bin/python benchmarks/warehouse_bench.py [--commits 3600] [--rows 60]
    .venv/bin/python benchmarks/warehouse_bench.py --detector-commits 40 [--batch 500] [--repeat 5]
    .venv/bin/python benchmarks/warehouse_bench.py --merge-rss 200 [--batch 500]

Fills a temporary warehouse with ``--commits`` appends of ``--rows`` cloud_run rows (an hour at
200 events/s leaves about 3,600 commits of 50-100 rows), then prints a markdown table. With
``--detector-commits`` it times the detector's own commit (``services.detector.sinks.write_warehouse_many``,
two batches of ``--batch`` scored messages per commit, a third of them purchases; through the commit journal,
services/detector/journal.py, where the checkout has one), best of ``--repeat``: run it from two checkouts
(``PYTHONPATH``) to compare them. ``--merge-rss`` fills a warehouse with that many detector commits and
prints the RSS before, at the peak of and after one full compaction merge in a fresh process of the checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from services.warehouse import append
from services.warehouse.compaction import Compactor
from services.warehouse.query import files, query

GROUP_BY = "SELECT event, count(*) AS n, sum(value) AS v FROM cloud_run GROUP BY event"


def _rows(k: int, n: int) -> list[dict]:
    t0 = datetime(2026, 11, 26, 10, tzinfo=UTC).replace(tzinfo=None) + timedelta(seconds=k)
    return [
        {
            "event_datetime": t0,
            "event": ("purchase", "view", "add_to_cart")[i % 3],
            "value": float(i),
            "message_id": f"{k}-{i}",
            "transaction_id": f"T{k}-{i}",
            "source": "bench",
        }
        for i in range(n)
    ]


def _time(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _detector_batches(n_batches: int, size: int) -> list:  # type: ignore[type-arg]
    import json

    from services.detector import records
    from services.detector.batch import Batch, Message
    from services.testing import events

    out = []
    for b in range(n_batches):
        messages = []
        for i in range(size):
            k = b * size + i
            event = events.purchase(40.0 + k % 50, transaction_id=f"T{k}") if k % 3 == 0 else events.view_item(f"u{k}")
            data = json.dumps(event).encode()
            messages.append(
                Message(data, {"anomaly": "0", "sent_at": "1"}, f"m{k}", 1_790_000_000_000_000 + k, f"a{k}")
            )
        parsed = records.parse_batch(Batch(messages=tuple(messages)))
        verdicts = tuple(
            {
                "score": 0.1,
                "is_anomaly": False,
                "nearest_centroid_id": 1,
                "normalized_distance": 0.2,
                "model_version": "1",
            }
            for _ in parsed.purchase_index
        )
        out.append(parsed.replace(verdicts=verdicts, model_version="1"))
    return out


def detector_commits(commits: int, batch: int, repeat: int) -> str:
    """Best of ``repeat``: events per second (wall) and per CPU-second of the detector's commit."""
    from services.detector import sinks

    journal_class: Any = None  # the commit journal (exactly once in both tables), where the checkout has one
    with contextlib.suppress(ImportError):
        from services.detector.journal import CommitJournal as journal_class

    batches = _detector_batches(2 * commits, batch)
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as root:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            journal = journal_class(root, "bench") if journal_class is not None else None
            for k in range(commits):
                if journal is not None:
                    sinks.write_warehouse_many(root, batches[2 * k : 2 * k + 2], journal)
                else:
                    sinks.write_warehouse_many(root, batches[2 * k : 2 * k + 2])
            best_wall = min(best_wall, time.perf_counter() - wall0)
            best_cpu = min(best_cpu, time.process_time() - cpu0)
    events = 2 * commits * batch
    return (
        f"| detector commits: {commits} x 2 batches of {batch} | {events / best_wall:,.0f} events/s wall | "
        f"{events / best_cpu:,.0f} events per CPU-second |"
    )


MERGE_CHILD = """
import sys, time
from pathlib import Path
from services.warehouse.compaction import Compactor

def status(key):
    return int([line for line in open('/proc/self/status') if line.startswith(key)][0].split()[1]) / 1024

before = status('VmRSS')
cpu0 = time.process_time()
counts = Compactor(sys.argv[1], grace_s=0, quiet_s=0).run_once()
cpu = time.process_time() - cpu0
time.sleep(0.5)
size = sum(p.stat().st_size for p in Path(sys.argv[1]).rglob('*.merged.parquet')) / 2**20
print(f"{before:.0f} {status('VmHWM'):.0f} {status('VmRSS'):.0f} {cpu:.2f} {counts['files_merged']} {size:.1f}")
"""


def merge_rss(commits: int, batch: int) -> str:
    """RSS of one full merge of ``commits`` detector commits (2 files each) in a fresh process of this checkout."""
    import subprocess

    from services.detector import sinks

    batches = _detector_batches(2 * commits, batch)
    with tempfile.TemporaryDirectory() as root:
        for k in range(commits):
            sinks.write_warehouse_many(root, batches[2 * k : 2 * k + 2])
        out = subprocess.run([sys.executable, "-c", MERGE_CHILD, root], capture_output=True, text=True, check=True)
    before, peak, after, cpu, files_merged, size = out.stdout.split()
    return (
        f"| merge of {files_merged} files ({2 * commits * batch:,} events) | {before} | {peak} | {after} | {cpu} "
        f"| {size} |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commits", type=int, default=3600)
    p.add_argument("--rows", type=int, default=60)
    p.add_argument("--detector-commits", type=int, default=0, help="time the detector's commit instead")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--merge-rss", type=int, default=0, help="RSS of one full merge of this many detector commits")
    args = p.parse_args(argv)
    if args.merge_rss:
        print("| merge | RSS before MiB | peak MiB | after MiB | CPU s | merged MiB |\n|---|---|---|---|---|---|")
        print(merge_rss(args.merge_rss, args.batch))
        return 0
    if args.detector_commits:
        print("| measure | wall | CPU |\n|---|---|---|")
        print(detector_commits(args.detector_commits, args.batch, args.repeat))
        return 0
    with tempfile.TemporaryDirectory() as root:
        fill = _time(lambda: [append(root, "cloud_run", _rows(k, args.rows)) for k in range(args.commits)])
        lines = ["| phase | live files | count(*) s | GROUP BY s | compaction CPU s |", "|---|---|---|---|---|"]

        def measure(phase: str, cpu: str) -> None:
            n = len(files(root, "cloud_run"))
            c = _time(lambda: query(root, "SELECT count(*) FROM cloud_run"))
            g = _time(lambda: query(root, GROUP_BY))
            lines.append(f"| {phase} | {n} | {c:.3f} | {g:.3f} | {cpu} |")

        measure(f"{args.commits} commits of {args.rows} rows", "-")
        comp = Compactor(root, grace_s=0)
        cpu0 = time.process_time()
        hot = comp.run_once()
        hot_cpu = time.process_time() - cpu0
        measure(f"after one hot run ({hot['files_merged']} files -> {hot['merged']})", f"{hot_cpu:.2f}")
        comp.quiet_s = 0
        cpu0 = time.process_time()
        comp.run_once()
        measure("after a quiet (full) run", f"{time.process_time() - cpu0:.2f}")
        append(root, "cloud_run", _rows(args.commits, args.rows))
        cpu0 = time.process_time()
        comp.quiet_s = 600
        comp.run_once()
        lines.append(f"| idle run with 1 new file | - | - | - | {time.process_time() - cpu0:.3f} |")
        comp.stop()
    print(
        f"`{' '.join([sys.executable.split('/')[-1], 'benchmarks/warehouse_bench.py', *(argv or sys.argv[1:])])}` "
        f"(fill: {fill:.1f} s)\n"
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
