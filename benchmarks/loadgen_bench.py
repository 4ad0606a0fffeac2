"""Load generator throughput: events/s generated and published into the emulator, and written to Parquet.

    .venv/bin/python benchmarks/loadgen_bench.py [--events 300000] [--parquet-events 1000000]

Starts its own emulator (hyp pubsub on free ports) with one subscription on a
fresh topic, so published messages are really stored. Prints a markdown table
and the command that made it. One process, as fast as possible (--max).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from teardown import stop_on_signals  # noqa: E402  (beside this script)

from loadgen.config import GeneratorConfig  # noqa: E402
from loadgen.dataset import labelled_table  # noqa: E402
from loadgen.generator import EventGenerator  # noqa: E402
from loadgen.render import payloads  # noqa: E402
from loadgen.runner import RunPhase, run  # noqa: E402
from loadgen.sinks.parquet import ParquetSink  # noqa: E402
from loadgen.sinks.pubsub import PubSubSink  # noqa: E402


def best_of(repeats: int, fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of the fastest of ``repeats`` runs, after one warm-up call."""
    fn(warm=True)
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn(warm=False)
        best = min(best, (time.perf_counter() - w, time.process_time() - c))
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--events", type=int, default=300_000, help="events published into the emulator")
    p.add_argument("--parquet-events", type=int, default=1_000_000)
    p.add_argument("--dataset-rows", type=int, default=1_000_000)
    args = p.parse_args()
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up
    config = GeneratorConfig()
    rows: list[tuple] = []

    n, r = args.events, args.repeats

    def generate(warm: bool) -> None:
        gen = EventGenerator(1, config)
        for _ in range(1 if warm else n // 5000):
            payloads(gen.next_columns(5000), config.n_users)

    rows.append(("generate + render JSON payloads (no sink)", n, *best_of(r, generate), "-"))

    def dataset(warm: bool) -> None:
        labelled_table(1000 if warm else args.dataset_rows, seed=1)

    rows.append(("`labelled_purchases` rows (Arrow table)", args.dataset_rows, *best_of(r, dataset), "-"))

    tmp = Path(tempfile.mkdtemp(prefix="loadgen-bench-"))
    try:

        def parquet(warm: bool) -> None:
            sink = ParquetSink(tmp / "warehouse", config.n_users, "bench")
            count = 1000 if warm else args.parquet_events
            run(EventGenerator(2, config), sink, [RunPhase(config)], max_batch=50_000, count=count)

        rows.append(
            ("`--to parquet --max` (warehouse `cloud_run`)", args.parquet_events, *best_of(r, parquet), ">= 200,000")
        )

        from services.testing.pubsub import start_emulator, unique

        emulator = start_emulator(tmp / "emulator")
        try:
            topic = emulator.topic_path(unique("bench"))
            emulator.publisher().create_topic(name=topic)
            emulator.subscriber().create_subscription(name=emulator.subscription_path(unique("bench")), topic=topic)

            def pubsub(warm: bool) -> None:
                sink = PubSubSink(topic, emulator.host, config.n_users, "bench")
                run(EventGenerator(3, config), sink, [RunPhase(config)], max_batch=5000, count=1000 if warm else n)

            rows.append(("`--to pubsub --max` into the emulator (raw gRPC)", n, *best_of(r, pubsub), ">= 50,000"))
        finally:
            emulator.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print()
    print(f"Best of {args.repeats} runs after a warm-up; load average at the end: {os.getloadavg()[0]:.1f}")
    print()
    print("| what | events | wall s | events/s (wall) | events per CPU-second of this process | target |")
    print("|---|---:|---:|---:|---:|---:|")
    for what, count, wall, cpu, target in rows:
        print(f"| {what} | {count:,} | {wall:.2f} | {count / wall:,.0f} | {count / cpu:,.0f} | {target} |")
    print()
    print(f"Command: `{' '.join(['.venv/bin/python', 'benchmarks/loadgen_bench.py', *sys.argv[1:]])}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
