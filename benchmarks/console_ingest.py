"""How many Pub/Sub messages a second the console's aggregation absorbs, and what one page update costs.

    .venv/bin/python benchmarks/console_ingest.py [--events 200000] [--anomaly-share 0.05]

Feeds LiveAnomalies the way the console's subscriber callbacks do (4 threads, labelled and
unlabelled events, detections), then times snapshot() + JSON encoding at the full 200 rows.
Prints a markdown table and the command that made it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from services.console.live import LiveAnomalies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--anomaly-share", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--warehouse", help="also time the warehouse row counts over this folder")
    args = parser.parse_args(argv)
    live = LiveAnomalies()
    every = max(1, round(1 / args.anomaly_share)) if args.anomaly_share > 0 else 0
    per = args.events // args.threads

    def work(t: int) -> None:
        for i in range(per):
            if every and i % every == 0:
                txn = f"T{t}-{i}"
                body = {
                    "event": "purchase",
                    "user_id": "u1",
                    "event_datetime": "2026-11-22 10:00:00",
                    "ecommerce": {"purchase": {"transaction_id": txn, "value": 1e6, "tax": 1.0, "shipping": 2.0}},
                }
                live.record_event({"anomaly": "1", "anomaly_kind": "value_spike"}, json.dumps(body).encode())
                det = {"transaction_id": txn, "score": 9.0, "model_version": "1", "value": 1e6}
                live.record_detection({"anomaly": "1"}, json.dumps(det).encode())
            else:
                live.record_event({"anomaly": "0"}, b"")

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(t,)) for t in range(args.threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ingest_s = time.perf_counter() - started
    for _ in range(300):
        live.add_point(1000.0)
    n = 200
    started = time.perf_counter()
    for _ in range(n):
        payload = json.dumps(live.snapshot(limit=200))
    snap_ms = (time.perf_counter() - started) / n * 1000
    rate = args.events / ingest_s
    print("| measure | value |")
    print("|---|---|")
    print(f"| messages aggregated | {args.events:,} ({args.anomaly_share:.0%} labelled anomalies + their detections) |")
    print(f"| aggregation throughput ({args.threads} threads) | {rate:,.0f} messages/s |")
    print(f"| CPU share of one core at 10,000 events/s | {10_000 / rate:.0%} |")
    print(
        f"| snapshot + JSON per page update (200 anomalies, 300 points) | {snap_ms:.2f} ms, "
        f"{len(payload) / 1024:.0f} KiB |"
    )
    if args.warehouse:
        for row in warehouse_rows(Path(args.warehouse)):
            print(row)
    print()
    print(f"command: .venv/bin/python benchmarks/console_ingest.py {' '.join(sys.argv[1:])}".rstrip())
    return 0


def warehouse_rows(root: Path) -> list[str]:
    """CPU of one warehouse count: first (every footer), unchanged (stat calls only), and a full listing."""
    from services.console.sources import WarehouseCounter
    from services.warehouse.query import files
    from services.warehouse.tables import TABLES

    def cpu_ms(fn, n: int = 1) -> float:
        started = time.process_time()
        for _ in range(n):
            fn()
        return (time.process_time() - started) / n * 1000

    counter = WarehouseCounter()
    first = cpu_ms(lambda: counter.counts(root))
    total = sum(len(files(root, t)) for t in TABLES)
    again = cpu_ms(lambda: counter.counts(root), 20)
    listing = cpu_ms(lambda: [files(root, t) for t in TABLES], 3)
    note = "" if counter.listings == len(TABLES) else " (folders changed within 2 s: listed again)"
    return [
        f"| warehouse count, first ({total:,} files: every footer) | {first:,.0f} ms CPU |",
        f"| warehouse count, unchanged{note} | {again:.2f} ms CPU |",
        f"| listing the live files (what each count cost before when unchanged) | {listing:,.0f} ms CPU |",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
