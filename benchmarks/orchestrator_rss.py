"""The orchestrator's memory over many runs: RSS of a real `hyp orchestrator` after each of N runs.

    .venv/bin/python benchmarks/orchestrator_rss.py [--runs 30] [--minutes-of-history 10]

A real MLflow server and `hyp orchestrator` (sensors on, default settings, `cooldown_s` 0) on free ports,
a warehouse holding ``--minutes-of-history`` of the load generator's events at 200 events/s; then N runs
started with ``POST /runs`` one after the other (``promote: false``: train, evaluate and gate every default
candidate, nothing else moves; ``--promote``: a better challenger becomes @champion, no endpoint or detector
to confirm). Prints the process's RSS after each run and the growth per run after the first few
(issue 18: "the orchestrator's RSS grows to about 620 MiB over a long run").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from teardown import stop_on_signals  # noqa: E402  (beside this script)

WARM = 5  # runs before growth is measured (imports, caches, the first models)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--minutes-of-history", type=float, default=10.0)
    ap.add_argument("--promote", action="store_true", help="let runs promote (the gate then loads the champion)")
    args = ap.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up

    import httpx
    from footprint_bench import rss_mib, tree

    from loadgen.config import GeneratorConfig
    from loadgen.generator import EventGenerator
    from loadgen.sinks.parquet import ParquetSink
    from services.common.processes import stop_group, wait_for
    from services.testing.hyp import HypProcess
    from tests.fixtures.mlflow import start_mlflow

    tmp = Path(tempfile.mkdtemp(prefix="hyp-orch-rss-"))
    mlflow = start_mlflow(tmp / "mlflow")
    orch = None
    try:
        start = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=args.minutes_of_history)
        config = GeneratorConfig.build(clock="simulated", start=start, sim_rate=200.0)
        gen = EventGenerator(seed=7, config=config)
        sink = ParquetSink(tmp / "warehouse", config.n_users, gen.run_id)
        sink.send(gen.next_columns(int(200 * args.minutes_of_history * 60)), time.time())
        sink.flush()
        env = {
            "HYP_ORCH_DATA_DIR": str(tmp / "orch"),
            "HYP_WAREHOUSE_DIR": str(tmp / "warehouse"),
            "HYP_ORCH_WAREHOUSE_DIR": str(tmp / "warehouse"),
            "MLFLOW_TRACKING_URI": mlflow.tracking_uri,
            "HYP_ORCH_COOLDOWN_S": "0",
            "PATH": "/usr/bin:/bin",
        }
        orch = HypProcess("orchestrator", log_path=tmp / "orchestrator.log", env=env).start(timeout=120)
        assert orch.process is not None
        pid = orch.process.pid
        rows = [(0, rss_mib(tree(pid)), 0.0, "-")]
        for k in range(1, args.runs + 1):
            t0 = time.monotonic()
            run = httpx.post(
                f"{orch.url}/runs", json={"promote": args.promote, "reason": f"rss {k}"}, timeout=30
            ).json()
            run_id = run["run"]["id"]

            def finished(run_id: str = run_id) -> dict | None:
                record = httpx.get(f"{orch.url}/runs/{run_id}", timeout=30).json()
                return record if record["status"] not in ("pending", "running") else None

            record = wait_for(finished, 600, f"run {run_id}", interval=0.5)
            rows.append((k, rss_mib(tree(pid)), time.monotonic() - t0, record["status"]))
            print(f"run {k}: {rows[-1][1]:.0f} MiB, {rows[-1][2]:.1f} s, {record['status']}", file=sys.stderr)
    finally:
        if orch is not None:
            orch.stop()
        stop_group(mlflow.process)

    print(f"`.venv/bin/python benchmarks/orchestrator_rss.py {' '.join(argv if argv is not None else sys.argv[1:])}`")
    print()
    print("| after run | RSS (MiB) | run seconds | status |")
    print("|---:|---:|---:|---|")
    for k, rss, secs, status in rows:
        print(f"| {k} | {rss:.0f} | {secs:.1f} | {status} |")
    if len(rows) > WARM + 2:
        base, last = rows[WARM], rows[-1]
        per_run = (last[1] - base[1]) / (last[0] - base[0])
        print(f"\ngrowth after run {WARM}: {per_run:+.2f} MiB per run ({base[1]:.0f} -> {last[1]:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
