"""jobs.query's rows as JSON against ``queryResultsFormat: ARROW``, both read with Google's client's ``to_arrow()``.

Starts `hyp bigquery` on free ports with a temporary warehouse and runs, through google-cloud-bigquery,
``query_and_wait(SQL).to_arrow()`` of a generated N-row, 3-column result: the JSON rows way
(``create_bqstorage_client=False``) and the ARROW way (``query_results_format="ARROW"``; past the first page the
client reads the job's ``_default`` stream through the Storage Read API, with a Storage client pointed at the
server's Read API). One warm-up each, then ``--repeat`` calls; prints the median wall time, the client's CPU
(``time.process_time``) and the server's (/proc), and the load average. Not a test: numbers depend on the box.

    .venv/bin/python benchmarks/bigquery_arrow_bench.py [--rows 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from teardown import stop_on_signals

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _server_cpu(pid: int) -> float:
    from services.common.processes import cpu_seconds

    return float(cpu_seconds(pid))


def _read_client(port: int) -> Any:  # -> BigQueryReadClient on an insecure channel to the Read API
    import grpc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", -1)])
    return BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel, credentials=AnonymousCredentials()))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still stops the server
    from services.common.processes import free_port
    from services.testing.bigquery import bigquery_client
    from services.testing.hyp import HypProcess

    sql = f"SELECT n, CAST(n AS STRING) AS s, n / 4 AS f FROM UNNEST(GENERATE_ARRAY(1, {args.rows})) AS n"
    home = Path(tempfile.mkdtemp(prefix="hyp-arrow-bench-"))
    env = dict(os.environ, HYP_WAREHOUSE_DIR=str(home / "warehouse"), HYP_PROJECT="hyp-local")
    read_port = free_port()
    load0 = os.getloadavg()[0]
    server = HypProcess("bigquery", "--read-port", str(read_port), env=env, log_path=home / "bigquery.log")
    with server.start(60):
        assert server.process is not None
        pid = server.process.pid
        client = bigquery_client(server.url, project="hyp-local")
        ways = {
            "JSON rows": ({}, {"create_bqstorage_client": False}),
            "ARROW": ({"query_results_format": "ARROW"}, {"bqstorage_client": _read_client(read_port)}),
        }
        results: dict[str, tuple[float, float, float]] = {}
        for name, (query_kw, arrow_kw) in ways.items():
            client.query_and_wait(sql, **query_kw).to_arrow(**arrow_kw)  # warm-up
            walls, client_cpu, server_cpu = [], [], []
            for _ in range(args.repeat):
                s0, c0, w0 = _server_cpu(pid), time.process_time(), time.perf_counter()
                table = client.query_and_wait(sql, **query_kw).to_arrow(**arrow_kw)
                walls.append(time.perf_counter() - w0)
                client_cpu.append(time.process_time() - c0)
                server_cpu.append(_server_cpu(pid) - s0)
                assert table.num_rows == args.rows, (name, table.num_rows)
            results[name] = (statistics.median(walls), statistics.median(client_cpu), statistics.median(server_cpu))
    load1 = os.getloadavg()[0]
    head = f"| {args.rows:,} rows, 3 columns, `query_and_wait(...).to_arrow()`, median of {args.repeat} |"
    print(head + " wall | client CPU s | server CPU s |")
    print("|---|---|---|---|")
    for name, (wall, ccpu, scpu) in results.items():
        print(f"| {name} | {wall * 1000:,.0f} ms | {ccpu:.3f} | {scpu:.3f} |")
    print(f"| load average (1 min) before / after | {load0:.1f} / {load1:.1f} | | |")
    print(f"\n`.venv/bin/python benchmarks/bigquery_arrow_bench.py --rows {args.rows} --repeat {args.repeat}`")


if __name__ == "__main__":
    main()
