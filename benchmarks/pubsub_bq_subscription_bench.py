"""A BigQuery subscription's sustained rows/s into a table, with 0 lost and 0 duplicated.

Starts `hyp bigquery` and `hyp pubsub` (this checkout, free ports, a temporary warehouse), makes a table with
Pub/Sub's metadata columns (pubsub_direct's shape) through Google's BigQuery client and a subscription with
``bigquery_config {table, write_metadata}`` through Google's Pub/Sub client, and measures two ways:

- backlog: ``--messages`` events published while the table is missing (state NOT_FOUND, all kept), then the
  table is created: rows/s from the first row written to the last (the write path alone);
- live: the table exists and ``--messages`` events are published as fast as raw gRPC goes: rows/s from the
  first publish to the last row written (publish and write sharing the machine).

Progress is read from the emulator's /admin/state (acked = written); at the end a BigQuery query counts
``COUNT(*)`` and ``COUNT(DISTINCT message_id)`` against what was published. CPU seconds of both processes
(from /proc) per 1,000 rows are the figures that hold on a busy machine. Prints a markdown table and the
command that made it. Not a test.

    nice -n 19 .venv/bin/python benchmarks/pubsub_bq_subscription_bench.py --messages 50000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from google.cloud import bigquery  # noqa: E402
from google.pubsub_v1 import types  # noqa: E402
from teardown import stop_on_signals  # noqa: E402  (beside this script)

from services.common.processes import cpu_seconds, wait_for  # noqa: E402
from services.testing.bigquery import bigquery_client  # noqa: E402
from services.testing.hyp import HypProcess  # noqa: E402
from services.testing.pubsub import EmulatorProcess, start_emulator  # noqa: E402

PROJECT = "bench-project"
SCHEMA = [
    bigquery.SchemaField("subscription_name", "STRING"),
    bigquery.SchemaField("message_id", "STRING"),
    bigquery.SchemaField("publish_time", "TIMESTAMP"),
    bigquery.SchemaField("data", "STRING"),
    bigquery.SchemaField("attributes", "STRING"),
]
# about the stack's events: a view_item event of the load generator (330 bytes) and its five attributes
EVENT = json.dumps(
    {
        "event_datetime": "2026-11-27 10:47:17.487",
        "event": "view_item",
        "user_id": "u018254",
        "client_id": "018254.1",
        "page": "/product/SKU10504",
        "page_previous": "/",
        "ecommerce": {"items": [{"item_name": "Lamp 2", "item_id": "SKU10504", "price": 11.99, "quantity": 1}]},
    }
).encode()
ATTRIBUTES = {"run_id": "bench", "sent_at": "1795776437487", "anomaly_kind": "", "event": "view_item", "anomaly": "0"}


def publish_all(emulator: EmulatorProcess, topic: str, total: int, batch: int = 1000, inflight: int = 4) -> float:
    """Publish total events with raw gRPC calls (batch per request, a few in flight); seconds taken."""
    import grpc

    channel = grpc.insecure_channel(emulator.host, options=[("grpc.max_send_message_length", -1)])
    publish = channel.unary_unary(
        "/google.pubsub.v1.Publisher/Publish",
        types.PublishRequest.pb().SerializeToString,
        types.PublishResponse.pb().FromString,
    )
    req = types.PublishRequest.pb()(topic=topic)
    for _ in range(batch):
        req.messages.add(data=EVENT, attributes=ATTRIBUTES)
    start, sent, pending = time.perf_counter(), 0, []
    while sent < total:
        pending.append(publish.future(req, timeout=60))
        sent += batch
        if len(pending) >= inflight:
            pending.pop(0).result()
    for f in pending:
        f.result()
    channel.close()
    return time.perf_counter() - start


def acked(emulator: EmulatorProcess, sub: str) -> int:
    state = httpx.get(f"{emulator.rest_url}/admin/state", timeout=10).json()
    return next(int(s["acked_total"]) for s in state["subscriptions"] if s["name"] == sub)


def wait_written(emulator: EmulatorProcess, sub: str, total: int, timeout: float) -> tuple[float, float]:
    """(monotonic time of the first row written, of the last) by polling every 50 ms."""
    first = wait_for(lambda: time.monotonic() if acked(emulator, sub) > 0 else None, timeout, "a first row", 0.05)
    last = wait_for(lambda: time.monotonic() if acked(emulator, sub) >= total else None, timeout, "all rows", 0.05)
    return first, last


def counts(bq: Any, table: str) -> tuple[int, int]:
    row = next(iter(bq.query(f"SELECT COUNT(*) AS n, COUNT(DISTINCT message_id) AS d FROM `{table}`").result()))
    return int(row.n), int(row.d)


def run(total: int, batch_rows: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = dict(os.environ, HYP_WAREHOUSE_DIR=str(home / "warehouse"), HYP_PROJECT=PROJECT, HYP_LOG_LEVEL="WARNING")
        with HypProcess("bigquery", log_path=home / "bigquery.log", env=env).start(120) as server:
            extra = {"BIGQUERY_EMULATOR_HOST": server.url, "HYP_PUBSUB_BIGQUERY_BATCH_ROWS": str(batch_rows)}
            emulator = start_emulator(home / "ps", topology="none", project=PROJECT, extra_env=extra)
            try:
                bq = bigquery_client(server.url, PROJECT)
                bq.create_dataset("bench")
                publisher, subscriber = emulator.publisher(), emulator.subscriber()
                out = []
                for mode in ("backlog", "live"):
                    table = f"{PROJECT}.bench.{mode}"
                    topic, sub = emulator.topic_path(mode), emulator.subscription_path(mode)
                    publisher.create_topic(name=topic)
                    if mode == "live":
                        bq.create_table(bigquery.Table(table, schema=SCHEMA))
                    config = {"table": table, "write_metadata": True}
                    subscriber.create_subscription(request={"name": sub, "topic": topic, "bigquery_config": config})
                    assert server.process is not None
                    e0, b0 = cpu_seconds(emulator.process.pid), cpu_seconds(server.process.pid)
                    t0 = time.monotonic()
                    publish_s = publish_all(emulator, topic, total)
                    if mode == "backlog":
                        bq.create_table(bigquery.Table(table, schema=SCHEMA))
                    first, last = wait_written(emulator, sub, total, timeout=max(120.0, total / 200))
                    e_cpu = cpu_seconds(emulator.process.pid) - e0
                    b_cpu = cpu_seconds(server.process.pid) - b0
                    n, distinct = counts(bq, table)
                    span = last - first if mode == "backlog" else last - t0
                    out.append(
                        {
                            "mode": mode,
                            "rows": total,
                            "seconds": span,
                            "rows_per_s": total / span,
                            "publish_s": publish_s,
                            "lost": total - distinct,
                            "duplicates": n - distinct,
                            "emulator_ms": e_cpu / total * 1e6,
                            "bigquery_ms": b_cpu / total * 1e6,
                        }
                    )
                return out
            finally:
                emulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000, help="events per mode (a multiple of 1000)")
    parser.add_argument("--batch-rows", type=int, default=1000, help="HYP_PUBSUB_BIGQUERY_BATCH_ROWS")
    args = parser.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up
    results = run(args.messages, args.batch_rows)
    load = os.getloadavg()[0]
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {load:.1f}\n")
    print("| mode | rows | wall s | rows/s | lost | duplicates | CPU ms per 1,000 rows: emulator / hyp bigquery |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['mode']} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} | {r['lost']} | "
            f"{r['duplicates']} | {r['emulator_ms']:.0f} / {r['bigquery_ms']:.0f} |"
        )
    argv_text = " ".join(argv if argv is not None else sys.argv[1:])
    print(f"\n`nice -n 19 .venv/bin/python benchmarks/pubsub_bq_subscription_bench.py {argv_text}`".rstrip())
    return 0 if all(r["lost"] == 0 and r["duplicates"] == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
