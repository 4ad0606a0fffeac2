"""Benchmark: wall-clock time from `hyp lab start 1` to challenge 4's check passing, via the reference solutions.

Starts from nothing (a fresh lab folder and warehouse, no MLflow, emulators or endpoint server: the
labs start them on free 127.0.0.1 ports), runs start/solve/check for challenges 1 to 4 as a participant who uses
`hyp lab solve` would, prints one row per step and the total as a markdown table, then
`hyp lab reset`. Nothing is downloaded.

    .venv/bin/python benchmarks/labs_bench.py [--events 6000]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

from services.common.processes import free_port
from services.testing.hyp import run_hyp

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=6000, help="events `hyp lab start 1` puts in the warehouse")
    p.add_argument("--last", type=int, default=4, help="last challenge to run (1..7)")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="hyp-labs-bench-"))
    processor_port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HYP_LAB_DIR": str(tmp / "lab"),
        "HYP_WAREHOUSE_DIR": str(tmp / "warehouse"),
        "HYP_MLFLOW_DIR": str(tmp / "mlflow"),
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
        "HYP_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "BIGQUERY_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}",
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}",
        "HYP_LAB_PROCESSOR_PORT": str(processor_port),
        "HYP_PROCESSOR_PUSH_ENDPOINT": f"http://127.0.0.1:{processor_port}/",
        "HYP_LAB_EVENTS": str(args.events),
    }
    rows: list[tuple[str, float, int]] = []
    began = time.monotonic()
    try:
        for n in range(1, args.last + 1):
            for verb in ("start", "solve", "check"):
                t0 = time.monotonic()
                r = run_hyp("lab", verb, str(n), env=env, timeout=1800)
                rows.append((f"hyp lab {verb} {n}", time.monotonic() - t0, r.returncode))
                if r.returncode != 0:
                    print(r.stdout, r.stderr, file=sys.stderr)
                    raise SystemExit(f"hyp lab {verb} {n} failed (exit {r.returncode})")
        total = time.monotonic() - began
    finally:
        run_hyp("lab", "reset", env=env, timeout=300)
    command = " ".join(
        shlex.quote(a) for a in [".venv/bin/python", "benchmarks/labs_bench.py", *(argv or sys.argv[1:])]
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n`{command}` ({os.cpu_count()} CPU cores, load average {load}, {args.events} events)\n")
    print("| step | seconds | exit |")
    print("|---|---:|---:|")
    for step, seconds, rc in rows:
        print(f"| {step} | {seconds:.1f} | {rc} |")
    print(f"| **start 1 -> check {args.last} passing** | **{total:.1f}** | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
