"""Warehouse: count(*) and a GROUP BY over an hour of small commits, before and after online compaction.

    .venv/bin/python benchmarks/warehouse_bench.py [--commits 3600] [--rows 60]

Fills a temporary warehouse with ``--commits`` appends of ``--rows`` cloud_run rows (an hour at
200 events/s leaves about 3,600 commits of 50-100 rows), then prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commits", type=int, default=3600)
    p.add_argument("--rows", type=int, default=60)
    args = p.parse_args(argv)
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
