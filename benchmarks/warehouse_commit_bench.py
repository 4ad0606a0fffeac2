"""Warehouse commit cost: detector-shaped dict rows and load-generator Arrow batches through ``append``.

    PYTHONPATH=<tree> .venv/bin/python benchmarks/warehouse_commit_bench.py

Best of 5 runs, rows/s of wall time and of this process's CPU time; run it from two trees (PYTHONPATH) on the
same machine, alternating, to compare a change. The event table is the detector's (``dataflow``, or
``cloud_run`` in trees before it had its own).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa

from loadgen import render
from loadgen.generator import EventGenerator
from services.common.events import event_row
from services.warehouse import append, tables


def _best(fn: Callable[[str], object], rows: int) -> tuple[float, float]:
    wall = cpu = 0.0
    for _ in range(5):
        with tempfile.TemporaryDirectory() as root:
            t, c = time.perf_counter(), time.process_time()
            fn(root)
            wall, cpu = max(wall, rows / (time.perf_counter() - t)), max(cpu, rows / (time.process_time() - c))
    return wall, cpu


def main() -> int:
    table = getattr(tables, "DETECTOR_TABLE", "cloud_run")
    gen = EventGenerator(seed=1)
    now = datetime.now(UTC).replace(tzinfo=None)
    commits = []
    for k in range(40):
        rows = []
        for i, (event, attrs) in enumerate(gen.next_batch(500)):
            extra = {"message_id": f"{k}-{i}", "publish_time": now, "attributes": json.dumps(attrs)}
            rows.append(event_row(event) | extra | {"source": "detector", "ingested_at": now})
        commits.append(rows)
    arrow = pa.table(render.columns(gen.next_columns(10_000), gen.config.n_users))
    print("| commits | rows/s (wall) | rows/s (CPU) |\n|---|---|---|")
    w, c = _best(lambda root: [append(root, table, rows) for rows in commits], 40 * 500)
    print(f"| detector: 40 x 500 dict rows into `{table}` | {w:,.0f} | {c:,.0f} |")
    w, c = _best(lambda root: [append(root, "cloud_run", arrow) for _ in range(3)], 30_000)
    print(f"| load generator: 3 x 10,000-row Arrow batches into `cloud_run` | {w:,.0f} | {c:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
