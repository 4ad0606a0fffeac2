"""Benchmark of several `hyp detector` workers on one subscription: 1 worker vs 2, same run.

For each worker count, on one private `hyp pubsub` emulator (everything on this machine):

* throughput: the workers start and are paused (SIGSTOP); ``--events`` events are published; the workers
  resume together (SIGCONT); events/s = ``--events`` / time from the resume to the last event handled.
  `hyp loadgen` is not competing for the cores while this is measured; the CPU each process used in
  that window says which one saturates;
* latency: `hyp loadgen` at ``--rate`` events/s for ``--seconds`` s while the workers run; p50/p99 of
  publish -> warehouse (sent_at to the row's ingested_at) over every event.

Duplicates (rows - distinct message ids) and lost events are counted on both runs. Prints a markdown
table, the load average before and after, and the command that made it.

    nice -n 19 .venv/bin/python benchmarks/detector_workers_bench.py [--events 60000] [--rate 1000]
        [--seconds 20] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from detector_bench import load_average  # noqa: E402  (this folder: the script's own)
from teardown import stop_on_signals  # noqa: E402  (beside this script)

from services.common.processes import cpu_seconds, wait_for  # noqa: E402
from services.detector.workers import worker_specs  # noqa: E402
from services.testing.pubsub import start_emulator  # noqa: E402
from services.warehouse.tables import DETECTOR_TABLE  # noqa: E402
from tests.services.detector.harness import Detector, Resources, publish_events, start_detector  # noqa: E402

# Smaller batches and window than one detector's defaults, so the workers share the backlog instead of the
# first one up pulling all of it ahead (max outstanding 20,000 each by default).
WORKER_FLAGS: tuple[str, ...] = ("--scorer", "zscore", "--detector-batch-size", "1000", "--max-outstanding", "6000")
WORKER_FLAGS += ("--commit-max-rows", "4000", "--compact-interval-s", "0")
EVENTS_TABLE = DETECTOR_TABLE  # the detector's events table


def start_workers(res: Resources, warehouse: Path, work: Path, count: int) -> list[Detector]:
    workers = []
    for spec in worker_specs(count, extra=WORKER_FLAGS):
        args = list(spec.args[1:])
        i = args.index("--metrics-port")
        del args[i : i + 2]  # the harness picks a free port (never the default ones)
        workers.append(start_detector(res, warehouse, work, *args))
    return workers


def cpu_times() -> list[int]:
    """The machine's CPU time counters (/proc/stat: user nice system idle iowait irq softirq steal), in ticks."""
    return [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]


def machine_use(before: list[int], after: list[int]) -> dict[str, float]:
    """% of all cores busy in a window, and the share of it that ran at a positive nice (where these run)."""
    delta = [a - b for a, b in zip(after, before, strict=True)]
    total = sum(delta) or 1
    return {"busy": 100 * (total - delta[3] - delta[4]) / total, "niced": 100 * delta[1] / total}


def handled(workers: list[Detector]) -> float:
    total = 0.0
    for det in workers:
        total += sum(v for k, v in det.metrics().items() if k.startswith("hyp_detector_events_total"))
    return total


def warehouse_stats(warehouse: Path) -> dict[str, float]:
    from services.warehouse.query import query

    sql = f"""
        SELECT count(*) AS rows, count(DISTINCT message_id) AS distinct_ids,
               quantile_cont(lat, 0.5) AS p50, quantile_cont(lat, 0.99) AS p99
        FROM (SELECT message_id,
                     epoch_ms(ingested_at) - CAST(json_extract_string(attributes, '$.sent_at') AS BIGINT) AS lat
              FROM {EVENTS_TABLE} WHERE source = 'detector')
    """
    row = query(warehouse, sql).to_pylist()[0]
    return {k: (v if v is not None else float("nan")) for k, v in row.items()}


def throughput(emulator, work: Path, count: int, events: int, timeout: float) -> dict:
    res = Resources(emulator.host, emulator.project).create()
    warehouse = work / f"wh-tp-{count}-{res.suffix}"
    workers = start_workers(res, warehouse, work, count)
    pids = {f"worker {i}": det.process.pid for i, det in enumerate(workers)} | {"emulator": emulator.process.pid}
    try:
        for det in workers:
            det.wait_up()
        # The backlog is published while the workers are paused (SIGSTOP), so they start on it together, warm,
        # and loadgen does not compete for the cores in the measured window.
        for det in workers:
            os.kill(det.process.pid, signal.SIGSTOP)
        try:
            publish_events(res, events, timeout=timeout)
        finally:
            for det in workers:
                os.kill(det.process.pid, signal.SIGCONT)
        t0, start_count, machine0 = time.monotonic(), 0.0, cpu_times()
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        wait_for(lambda: handled(workers) >= events, timeout, f"{events} events handled", interval=0.1)
        elapsed = time.monotonic() - t0
        cpu = {k: 100 * (cpu_seconds(p) - cpu0[k]) / elapsed for k, p in pids.items()}
        machine = machine_use(machine0, cpu_times())
        per_worker = [
            sum(v for k, v in d.metrics().items() if k.startswith("hyp_detector_events_total")) for d in workers
        ]
    finally:
        codes = [det.stop() for det in workers]
    stats = warehouse_stats(warehouse)
    return {
        "workers": count,
        "events": events,
        "measured": events - start_count,
        "elapsed_s": elapsed,
        "rate": (events - start_count) / elapsed,
        "per_worker": per_worker,
        "cpu_percent": cpu,
        "machine": machine,
        "distinct": stats["distinct_ids"],
        "rows": stats["rows"],
        "exit": codes,
    }


def latency(emulator, work: Path, count: int, rate: float, seconds: float) -> dict:
    res = Resources(emulator.host, emulator.project).create()
    warehouse = work / f"wh-lat-{count}-{res.suffix}"
    workers = start_workers(res, warehouse, work, count)
    n = int(rate * seconds)
    try:
        for det in workers:
            det.wait_up()
        publish_events(res, n, rate=rate, timeout=seconds * 4 + 60)
        wait_for(lambda: handled(workers) >= n, 120, f"{n} events handled", interval=0.2)
    finally:
        codes = [det.stop() for det in workers]
    stats = warehouse_stats(warehouse)
    return {"workers": count, "n": n, "p50": stats["p50"], "p99": stats["p99"], "distinct": stats["distinct_ids"],
            "rows": stats["rows"], "exit": codes}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000, help="backlog the workers drain (throughput)")
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s of the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, in order")
    args = parser.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up
    counts = [int(c) for c in args.workers.split(",")]

    load_before = load_average()
    work = Path(tempfile.mkdtemp(prefix="hyp-detector-workers-bench-"))
    emulator = start_emulator(work / "pubsub", topology="none")
    results: list[dict] = []
    try:
        for count in counts:
            results.append(
                {
                    "throughput": throughput(emulator, work, count, args.events, timeout=600),
                    "latency": latency(emulator, work, count, args.rate, args.seconds),
                }
            )
    finally:
        emulator.stop()

    base = results[0]["throughput"]["rate"]
    print("| workers | events/s draining the backlog | vs first | events per worker | CPU % of one core in that window "
          "| events per worker CPU-second | machine busy (all cores) "
          f"| p50 / p99 publish -> warehouse at {args.rate:,.0f}/s | lost / duplicate rows |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    bad = 0
    for count, result in zip(counts, results, strict=True):
        tp, lat = result["throughput"], result["latency"]
        cpu = ", ".join(f"{k} {v:.0f}" for k, v in tp["cpu_percent"].items())
        workers_cpu_s = sum(v for k, v in tp["cpu_percent"].items() if k.startswith("worker")) / 100 * tp["elapsed_s"]
        per_cpu_s = tp["measured"] / workers_cpu_s if workers_cpu_s else float("nan")
        busy = tp["machine"]
        lost = (tp["events"] - tp["distinct"]) + (lat["n"] - lat["distinct"])
        dup = (tp["rows"] - tp["distinct"]) + (lat["rows"] - lat["distinct"])
        bad += lost
        print(
            f"| {count} | {tp['rate']:,.0f} ({tp['measured']:,.0f} events in {tp['elapsed_s']:.1f} s) "
            f"| {tp['rate'] / base:.2f}x | {' / '.join(f'{n:,.0f}' for n in tp['per_worker'])} | {cpu} "
            f"| {per_cpu_s:,.0f} | {busy['busy']:.0f}% ({busy['niced']:.0f}% niced) "
            f"| {lat['p50']:.0f} ms / {lat['p99']:.0f} ms ({lat['n']:,} events) | {lost:.0f} / {dup:.0f} |"
        )
    print()
    print(f"load average (1/5/15 min): {load_before} before, {load_average()} after; cores: {_cores()}")
    given = shlex.join(argv or sys.argv[1:])
    print(f"command: nice -n 19 .venv/bin/python benchmarks/detector_workers_bench.py {given}".rstrip())
    print(f"details: {json.dumps(results, default=str)}")
    return 0 if bad == 0 else 1


def _cores() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    raise SystemExit(main())
