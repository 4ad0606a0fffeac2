"""Memory of the processor's idempotency ledger at its bounds, per tree (issue 18: the processor's soak growth).

    .venv/bin/python benchmarks/ledger_bench.py [--ids 100000] [--anomaly-ids 27000] [--root PATH ...]

Fills a real :class:`services.processor.ledger.Ledger` the way the processor does at the default rate when
both tables reach their bounds (``cloud_run`` at ``max_ids``; ``cloud_run_anomaly``, the purchases, at what
900 s of ~30 purchases/s leaves), in batches of 50 with Pub/Sub-like numeric message ids and publish times,
and reports the bytes that stay allocated (tracemalloc) and the time per id added. Each ``--root`` (this
checkout by default; e.g. a git worktree of an older commit) runs in a fresh interpreter with this venv's
Python, so layouts before and after a change are measured the same way in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time, tracemalloc
from services.processor.ledger import Ledger

ids, anomaly_ids = int(sys.argv[1]), int(sys.argv[2])
clock = [1_800_000_000.0]
tracemalloc.start()
ledger = Ledger(max_ids=100_000, max_age_s=900.0, clock=lambda: clock[0])
base = tracemalloc.get_traced_memory()[0]
started = time.perf_counter()
for table, n in (("cloud_run", ids), ("cloud_run_anomaly", anomaly_ids)):
    for first in range(0, n, 50):
        batch = [(str(2_070_443_601_311_540 + i), clock[0] - 0.2 + i * 1e-6) for i in range(first, min(first + 50, n))]
        ledger.add(table, batch)
        clock[0] += 0.001
elapsed = time.perf_counter() - started
held = tracemalloc.get_traced_memory()[0] - base
print(json.dumps({"ids": ledger.size(), "bytes": held, "ns_per_id": elapsed / (ids + anomaly_ids) * 1e9}))
"""


def measure(root: Path, ids: int, anomaly_ids: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(ids), str(anomaly_ids)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ids", type=int, default=100_000, help="ids written to cloud_run (its bound by default)")
    p.add_argument("--anomaly-ids", type=int, default=27_000, help="ids written to cloud_run_anomaly")
    p.add_argument("--root", action="append", type=Path, help="a checkout to measure (repeatable)")
    args = p.parse_args(argv)
    roots = args.root or [ROOT]
    print(
        f"`python benchmarks/ledger_bench.py --ids {args.ids} --anomaly-ids {args.anomaly_ids}"
        + "".join(f" --root {r}" for r in args.root or [])
        + "`"
    )
    print()
    print("| tree | ids held | MiB held | bytes per id | ns per id added |")
    print("|---|---:|---:|---:|---:|")
    for root in roots:
        r = measure(root, args.ids, args.anomaly_ids)
        print(
            f"| {root} | {r['ids']:,} | {r['bytes'] / 2**20:.1f} | {r['bytes'] / r['ids']:.0f} | {r['ns_per_id']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
