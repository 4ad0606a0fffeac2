"""`hyp bigquery` through Google's client: insertAll rows/s, a query over the stack's `cloud_run` rows against
DuckDB reading the same files, small-query round trips, and the server's RSS with many rows stored.

    .venv/bin/python benchmarks/bigquery_bench.py [--insert-rows 100000] [--query-rows 1000000]
                                                  [--stored-rows 10000000] [--round-trips 200]
    .venv/bin/python benchmarks/bigquery_bench.py --hour [--hour-events 720000] [--file-rows 1000]

``--hour``: `SELECT count(*)` over an hour of events (200 events/s: 720,000, in the files the load generator
writes at that rate: one per 5-s flush, 1,000 rows) through a freshly started `hyp bigquery` (a restart:
no cache), then again after the warehouse's compaction merged the files; wall time of the client's call.

    .venv/bin/python benchmarks/bigquery_bench.py --pages [--page-rows 1000000] [--page-size 1000]

    .venv/bin/python benchmarks/bigquery_bench.py --queries [--query-rows 1000000] [--ways rest,read-api,read-rows]
                                                  [--repeat 3] [--which rows,every,group] [--round-trips 200]

``--queries``: only the queries over ``--query-rows`` cloud_run rows, each three ways in the same run: DuckDB on
the files, Google's client over REST (``query_and_wait(...).to_arrow()``: JSON pages) and over the Storage Read
API (``query(...).result().to_arrow(bqstorage_client=...)``: Arrow streams from `hyp bigquery`'s gRPC port);
best of ``--repeat`` (3) wall, and the CPU seconds of the client and the server per call (their mean; DuckDB's
threads are the benchmark's own, so its CPU is this process's, and "x DuckDB's" compares client + server CPU with
it: a ratio the other work on the machine moves less than the wall one). ``--ways``
picks some of the three API ways (``rest``: 30 s a call for 1,000,000 rows; ``read-api``; ``read-rows``: the
Storage client itself, see ``_read_rows``). ``--which`` picks some of the three queries (``group``: the issue's
GROUP BY alone). Then ``--round-trips`` calls of `SELECT 1` each way the client asks it (``query_and_wait``:
jobs.query; ``query().result()``: jobs.insert and two getQueryResults), their p50 and p99 wall and the client's
and the server's CPU per call; 0: none.

``--pages``: ``client.list_rows`` (tabledata.list) of one page, the first and one near the end, of a table of
``--page-rows`` cloud_run events in files of 50,000 rows; best of 3, wall time of the client's call.

Starts `hyp bigquery` on a free port over a temporary warehouse and prints a markdown table and the command.
Server-side rates divide rows by the CPU seconds of the server process (its own /proc), so the client's cost
does not count; wall rates include both on this machine's shared cores. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from teardown import stop_on_signals

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROJECT = "hyp-local"
TARGETS = {"insert": 50_000, "query_ratio": 1.5, "rss_mib": 300}


def _cpu(pid: int) -> float:
    from services.common.processes import cpu_seconds

    return cpu_seconds(pid)


def _rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _rows(n: int, start: int) -> list[dict]:
    return [
        {"id": start + i, "event": "purchase" if i % 7 == 0 else "view", "value": (start + i) % 997 / 3.0, "note": "x"}
        for i in range(n)
    ]


def _fill_cloud_run(warehouse: Path, rows: int, rows_per_file: int = 500_000) -> None:
    """``rows`` events in the stack's cloud_run table, written as the load generator writes them."""
    from loadgen.config import GeneratorConfig
    from loadgen.generator import EventGenerator
    from loadgen.sinks.parquet import ParquetSink

    config = GeneratorConfig.build(clock="simulated")
    gen = EventGenerator(seed=11, config=config)
    sink = ParquetSink(warehouse, config.n_users, gen.run_id, rows_per_file=rows_per_file)
    done = 0
    while done < rows:
        n = min(200_000, rows_per_file, rows - done)
        sink.send(gen.next_columns(n), time.time())
        done += n
    sink.close()


def insert(client, server_pid: int, table_id: str, total: int, batch: int) -> tuple[float, float]:
    """(wall rows/s, server rows per CPU-second) of insert_rows_json in batches of ``batch``."""
    cpu0, t0 = _cpu(server_pid), time.perf_counter()
    for k in range(0, total, batch):
        errors = client.insert_rows_json(
            table_id, _rows(min(batch, total - k), k), row_ids=[None] * min(batch, total - k)
        )
        assert errors == [], errors[:3]
    wall, cpu = time.perf_counter() - t0, _cpu(server_pid) - cpu0
    return total / wall, total / cpu


def lean_insert(url: str, server_pid: int, table: str, total: int, batch: int) -> tuple[float, float]:
    """The same through one keep-alive HTTP connection and pre-serialized bodies (no client library)."""
    import httpx

    bodies = [
        json.dumps({"rows": [{"json": r} for r in _rows(min(batch, total - k), k)]}).encode()
        for k in range(0, total, batch)
    ]
    path = f"{url}/bigquery/v2/projects/{PROJECT}/datasets/bench/tables/{table}/insertAll"
    with httpx.Client(timeout=120) as http:
        cpu0, t0 = _cpu(server_pid), time.perf_counter()
        for body in bodies:
            answer = http.post(path, content=body, headers={"content-type": "application/json"})
            assert answer.status_code == 200 and "insertErrors" not in answer.json(), answer.text[:300]
        wall, cpu = time.perf_counter() - t0, _cpu(server_pid) - cpu0
    return total / wall, total / cpu


def timed(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def hour(events: int, file_rows: int) -> list[tuple[str, str, str]]:
    """count(*) over ``events`` stored in files of ``file_rows``, on a fresh server, before and after compaction."""
    from services.testing.bigquery import bigquery_client
    from services.testing.hyp import HypProcess
    from services.warehouse.compaction import Compactor
    from services.warehouse.query import files

    tmp = Path(tempfile.mkdtemp(prefix="bq-hour-"))
    warehouse = tmp / "warehouse"
    out = []
    try:
        _fill_cloud_run(warehouse, events, file_rows)
        for phase in ("as written", "after compaction"):
            if phase == "after compaction":
                compactor = Compactor(warehouse, grace_s=0, quiet_s=0)
                for _ in range(5):  # until a run merges nothing more
                    if not compactor.run_once()["merged"]:
                        break
                compactor.stop()
            n_files = len(files(warehouse, "cloud_run"))
            env = dict(os.environ, HYP_WAREHOUSE_DIR=str(warehouse), HYP_PROJECT=PROJECT)
            server = HypProcess("bigquery", log_path=tmp / "bigquery.log", env=env).start(120)
            try:
                client = bigquery_client(server.url, PROJECT)
                sql = f"SELECT count(*) AS n FROM `{PROJECT}.ecommerce_sink.cloud_run`"
                t0 = time.perf_counter()
                (row,) = client.query_and_wait(sql)
                first = time.perf_counter() - t0
                again = timed(lambda c=client, q=sql: list(c.query_and_wait(q)))
            finally:
                server.stop()
            out.append(
                (
                    f"`SELECT count(*)` over {row['n']:,} events in {n_files:,} files ({phase}), fresh server",
                    f"first {first:.3f} s",
                    f"then {again:.3f} s (target < 1 s)",
                )
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def pages(total: int, size: int) -> list[tuple[str, str, str]]:
    """One tabledata.list page at the start and near the end of a ``total``-row table."""
    from services.testing.bigquery import bigquery_client
    from services.testing.hyp import HypProcess

    tmp = Path(tempfile.mkdtemp(prefix="bq-pages-"))
    warehouse = tmp / "warehouse"
    out = []
    try:
        _fill_cloud_run(warehouse, total, 50_000)
        env = dict(os.environ, HYP_WAREHOUSE_DIR=str(warehouse), HYP_PROJECT=PROJECT)
        server = HypProcess("bigquery", log_path=tmp / "bigquery.log", env=env).start(120)
        try:
            client = bigquery_client(server.url, PROJECT)
            table = f"{PROJECT}.ecommerce_sink.cloud_run"
            for start in (0, total - 2 * size):
                n = len(list(client.list_rows(table, start_index=start, max_results=size)))
                took = timed(lambda s=start: list(client.list_rows(table, start_index=s, max_results=size)))
                out.append((f"list_rows page at row {start:,} of {total:,} ({n:,} rows)", f"{took:.3f} s", "best of 3"))
        finally:
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--insert-rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=500, help="rows per insert_rows_json call (BigQuery suggests 500)")
    ap.add_argument("--lean-batch", type=int, default=10_000, help="rows per request of the lean client")
    ap.add_argument("--query-rows", type=int, default=1_000_000)
    ap.add_argument("--stored-rows", type=int, default=10_000_000, help="rows in cloud_run for the RSS figure")
    ap.add_argument("--round-trips", type=int, default=200)
    ap.add_argument("--hour", action="store_true", help="only count(*) over an hour of events after a restart")
    ap.add_argument("--hour-events", type=int, default=720_000)
    ap.add_argument("--file-rows", type=int, default=1_000, help="rows per file for --hour")
    ap.add_argument("--pages", action="store_true", help="only the time of a list_rows page")
    ap.add_argument("--page-rows", type=int, default=1_000_000)
    ap.add_argument("--page-size", type=int, default=1_000)
    ap.add_argument("--queries", action="store_true", help="only the queries: DuckDB, REST and the Read API")
    ap.add_argument("--ways", default=",".join(WAYS), help=f"--queries: which API ways ({', '.join(WAYS)})")
    ap.add_argument("--repeat", type=int, default=3, help="--queries: calls timed per way (best wall, mean CPU)")
    ap.add_argument("--which", default=",".join(QUERIES), help=f"--queries: which queries ({', '.join(QUERIES)})")
    args = ap.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still stops the servers it started
    if args.queries:
        ways = [w.strip() for w in args.ways.split(",") if w.strip()]
        if not ways or set(ways) - set(WAYS):
            ap.error(f"--ways: some of {', '.join(WAYS)}")
        which = [w.strip() for w in args.which.split(",") if w.strip()]
        if set(which) - set(QUERIES):
            ap.error(f"--which: some of {', '.join(QUERIES)}")
        load = os.getloadavg()[0]
        _print(read_api_queries(args.query_rows, ways, args.repeat, which, args.round_trips), argv, load)
        return 0
    if args.pages:
        _print(pages(args.page_rows, args.page_size), argv)
        return 0
    if args.hour:
        _print(hour(args.hour_events, args.file_rows), argv)
        return 0

    import duckdb
    from google.cloud import bigquery

    from services.testing.bigquery import bigquery_client
    from services.testing.hyp import HypProcess

    tmp = Path(tempfile.mkdtemp(prefix="bq-bench-"))
    warehouse = tmp / "warehouse"
    _fill_cloud_run(warehouse, args.query_rows)
    env = dict(os.environ, HYP_WAREHOUSE_DIR=str(warehouse), HYP_PROJECT=PROJECT)
    server = HypProcess("bigquery", log_path=tmp / "bigquery.log", env=env).start(120)
    out: list[tuple[str, str, str]] = []
    try:
        assert server.process is not None
        pid = server.process.pid
        client = bigquery_client(server.url, PROJECT)
        client.create_dataset("bench")
        schema = [
            bigquery.SchemaField("id", "INT64"),
            bigquery.SchemaField("event", "STRING"),
            bigquery.SchemaField("value", "FLOAT64"),
            bigquery.SchemaField("note", "STRING"),
        ]
        for name in ("client", "lean"):
            client.create_table(bigquery.Table(f"{PROJECT}.bench.{name}", schema=schema))
        wall, server_rate = insert(client, pid, f"{PROJECT}.bench.client", args.insert_rows, args.batch)
        out.append(
            (
                f"insert_rows_json, {args.batch} rows a call, {args.insert_rows:,} rows",
                f"{wall:,.0f} rows/s wall",
                f"{server_rate:,.0f} rows per server CPU-second",
            )
        )
        wall, server_rate = lean_insert(server.url, pid, "lean", args.insert_rows, args.lean_batch)
        out.append(
            (
                f"insertAll, lean client, {args.lean_batch:,} rows a request",
                f"{wall:,.0f} rows/s wall",
                f"{server_rate:,.0f} rows per server CPU-second (target >= {TARGETS['insert']:,})",
            )
        )

        table = f"`{PROJECT}.ecommerce_sink.cloud_run`"
        files = f"{warehouse}/cloud_run/*/*.parquet"
        p = "ecommerce.purchase"  # the workshop's nested record: stored in the same files, read the same way
        group = f"SELECT event, count(*) AS n, avg({p}.value) AS v FROM {{}} GROUP BY event ORDER BY n DESC"
        rows = f"SELECT {p}.transaction_id, {p}.value, {p}.tax FROM {{}} WHERE event = 'purchase' AND {p}.value > 500"
        queries = {
            "GROUP BY event, count and avg(value)": (group.format(table), group.format(f"read_parquet('{files}')")),
            "purchases over 500, 3 columns": (rows.format(table), rows.format(f"read_parquet('{files}')")),
        }
        con = duckdb.connect()
        for label, (api_sql, duck_sql) in queries.items():
            n = len(client.query_and_wait(api_sql).to_arrow())
            api = timed(lambda sql=api_sql: client.query_and_wait(sql).to_arrow())
            duck = timed(lambda sql=duck_sql: con.execute(sql).to_arrow_table())
            out.append(
                (
                    f"query over {args.query_rows:,} cloud_run rows: {label} ({n:,} rows)",
                    f"API {api:.3f} s vs DuckDB {duck:.3f} s",
                    f"{api / duck:.2f}x (target <= {TARGETS['query_ratio']}x)",
                )
            )

        times = []
        for _ in range(args.round_trips):
            t0 = time.perf_counter()
            list(client.query_and_wait("SELECT 1 AS x"))
            times.append(time.perf_counter() - t0)
        times.sort()
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        out.append(
            (
                f"small query round trip (`SELECT 1`, {args.round_trips} calls)",
                f"p50 {1000 * statistics.median(times):.1f} ms",
                f"p99 {1000 * p99:.1f} ms",
            )
        )

        if args.stored_rows > args.query_rows:
            _fill_cloud_run(warehouse, args.stored_rows - args.query_rows)
        (row,) = client.query_and_wait(f"SELECT count(*) AS n FROM {table}")
        for sql in queries.values():
            client.query_and_wait(sql[0]).to_arrow()
        out.append(
            (
                f"RSS of hyp bigquery with {row['n']:,} rows in cloud_run (after count(*) and both queries)",
                f"{_rss_mib(pid):.0f} MiB",
                f"target <= {TARGETS['rss_mib']} MiB",
            )
        )
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    _print(out, argv)
    return 0


def _read_client(port: int) -> Any:  # -> BigQueryReadClient on an insecure channel to hyp bigquery's Read API
    import grpc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", -1)])
    return BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel, credentials=AnonymousCredentials()))


def _read_rows(client: Any, reader: Any, sql: str) -> Any:  # -> pyarrow.Table
    """A query's result through the Read client itself: a session on the job's destination table, its one stream
    read in this thread (google-cloud-bigquery's to_arrow reads streams on worker threads and looks for the
    end of its downloads every 0.2 s, a floor on every read)."""
    import pyarrow as pa
    from google.cloud.bigquery_storage_v1 import types

    job = client.query(sql)
    job.result()
    dest = job.destination
    requested = types.ReadSession(
        table=f"projects/{dest.project}/datasets/{dest.dataset_id}/tables/{dest.table_id}",
        data_format=types.DataFormat.ARROW,
    )
    session = reader.create_read_session(parent=f"projects/{dest.project}", read_session=requested, max_stream_count=1)
    if not session.streams:
        return pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema)).empty_table()
    return reader.read_rows(session.streams[0].name).to_arrow(session)


WAYS = {"rest": "REST", "read-api": "Read API", "read-rows": "Read API, read_rows"}
QUERIES = ("rows", "every", "group")


def round_trips(client: Any, pid: int, calls: int) -> list[tuple[str, str, str]]:
    """``calls`` small queries (`SELECT 1`) each way Google's client asks one: p50 and p99 wall, and the client's
    and the server's CPU per call (their mean, from /proc)."""
    out = []
    ways = {
        "query_and_wait (jobs.query)": lambda: list(client.query_and_wait("SELECT 1 AS x")),
        "query().result() (jobs.insert, 2 getQueryResults)": lambda: list(client.query("SELECT 1 AS x").result()),
    }
    for label, call in ways.items():
        call()
        times = []
        mine0, server0 = time.process_time(), _cpu(pid)
        for _ in range(calls):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        mine, server = (time.process_time() - mine0) / calls, (_cpu(pid) - server0) / calls
        times.sort()
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        out.append(
            (
                f"small query round trip, {label} (`SELECT 1`, {calls} calls)",
                f"p50 {1000 * statistics.median(times):.1f} ms, p99 {1000 * p99:.1f} ms",
                f"CPU per call: client {1000 * mine:.2f} ms, server {1000 * server:.2f} ms",
            )
        )
    return out


def read_api_queries(
    total: int, ways: list[str] | None = None, repeat: int = 3, which: list[str] | None = None, calls: int = 0
) -> list[tuple[str, str, str]]:
    """Row-returning and aggregate queries over ``total`` cloud_run rows: DuckDB on the files, the REST path and
    the Read API path, in this one run (best of ``repeat`` wall; client and server CPU seconds per call, their mean
    over the ``repeat`` calls, from /proc); ``which``: some of the queries (``QUERIES``); then ``calls`` round
    trips (:func:`round_trips`)."""
    import duckdb

    from services.common.processes import free_port
    from services.testing.bigquery import bigquery_client
    from services.testing.hyp import HypProcess

    tmp = Path(tempfile.mkdtemp(prefix="bq-bench-"))
    warehouse = tmp / "warehouse"
    _fill_cloud_run(warehouse, total)
    env = dict(
        os.environ, HYP_WAREHOUSE_DIR=str(warehouse), HYP_PROJECT=PROJECT, HYP_BIGQUERY_QUERY_RESULT_TABLES="true"
    )
    read_port = free_port()
    server = HypProcess("bigquery", "--read-port", str(read_port), log_path=tmp / "bigquery.log", env=env).start(120)
    out: list[tuple[str, str, str]] = []
    try:
        assert server.process is not None
        pid = server.process.pid
        client = bigquery_client(server.url, PROJECT)
        reader = _read_client(read_port)
        table = f"`{PROJECT}.ecommerce_sink.cloud_run`"
        files = f"read_parquet('{warehouse}/cloud_run/*/*.parquet')"
        p = "ecommerce.purchase"
        rows = f"SELECT {p}.transaction_id, {p}.value, {p}.tax FROM {{}} WHERE event = 'purchase' AND {p}.value > 500"
        every = f"SELECT event_datetime, user_id, {p}.value FROM {{}}"
        group = f"SELECT event, count(*) AS n, avg({p}.value) AS v FROM {{}} GROUP BY event ORDER BY n DESC"
        queries = {
            "purchases over 500, 3 nested columns": rows,
            "every row, 3 columns (a timestamp, a string, a nested float)": every,
            "GROUP BY event, count and avg(value)": group,
        }
        chosen = set(which or QUERIES)
        queries = {label: sql for (label, sql), key in zip(queries.items(), QUERIES, strict=True) if key in chosen}
        con = duckdb.connect()
        runs = {
            "rest": lambda sql: client.query_and_wait(sql).to_arrow(create_bqstorage_client=False),
            "read-api": lambda sql: client.query(sql).result().to_arrow(bqstorage_client=reader),
            "read-rows": lambda sql: _read_rows(client, reader, sql),
        }
        for label, template in queries.items():
            duck_sql = template.format(files)
            n = con.sql(duck_sql).to_arrow_table().num_rows
            mine0 = time.process_time()  # DuckDB's threads are this process's
            duck = timed(lambda sql=duck_sql: con.sql(sql).to_arrow_table(), repeat)
            duck_cpu = (time.process_time() - mine0) / repeat
            cells = [f"DuckDB {duck:.3f} s (CPU {duck_cpu:.3f} s)"]
            for key in ways or list(WAYS):
                way, run = WAYS[key], runs[key]
                got = run(template.format(table))
                assert got.num_rows == n, (way, got.num_rows, n)
                mine0, server0 = time.process_time(), _cpu(pid)
                wall = timed(lambda sql=template.format(table), run=run: run(sql), repeat)
                cpu = ((time.process_time() - mine0) / repeat, (_cpu(pid) - server0) / repeat)
                both = (cpu[0] + cpu[1]) / duck_cpu if duck_cpu else float("nan")
                cells.append(
                    f"{way} {wall:.3f} s ({wall / duck:.2f}x; CPU client {cpu[0]:.3f} s, server {cpu[1]:.3f} s:"
                    f" {both:.2f}x DuckDB's)"
                )
            out.append((f"{label} over {total:,} cloud_run rows ({n:,} rows back)", cells[0], "; ".join(cells[1:])))
        if calls:
            out += round_trips(client, pid, calls)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _print(out: list[tuple[str, str, str]], argv: list[str] | None, load: float | None = None) -> None:
    print("| measure | value | |\n|---|---|---|")
    for row_ in out:
        print("| " + " | ".join(row_) + " |")
    args_text = " ".join(argv if argv is not None else sys.argv[1:])
    print(f"\n`.venv/bin/python benchmarks/bigquery_bench.py {args_text}`".rstrip())
    start = f"at the start {load:.1f}, " if load is not None else ""
    print(f"load average (1 min): {start}at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    raise SystemExit(main())
