"""BigQuery ML in `hyp bigquery` vs the Python API on the same rows: CREATE MODEL ... KMEANS over N purchases
(tax, shipping, value) and ML.DETECT_ANOMALIES over them, seconds and rows/s, and the RSS of `hyp bigquery`.

Starts `hyp bigquery` on a free port with a temporary warehouse, loads the rows as one Parquet load job,
then, after one tiny warm-up model on each side (imports), runs each statement ``--repeat`` times, alternating
with the Python path (a change of the machine's load then hits both), and prints the median of each: wall seconds,
rows/s, and CPU-seconds (/proc/<pid>/stat: the `hyp bigquery` process for SQL, this process for Python):
- SQL: `CREATE OR REPLACE MODEL` through Google's client (the query, the transfer into Python, training,
  storing); `SELECT COUNTIF(is_anomaly), COUNT(*) FROM ML.DETECT_ANOMALIES(..., TABLE t)` (every row scored
  in the server, a one-row answer).
- Python: `models.training.fit("kmeans", ...)` as `hyp train --model kmeans` runs it (on the rows already
  in memory), and `BqmlKMeans.detect_anomalies` on the same matrix; and once more reading the rows first
  (the loaded Parquet bytes, from memory), the work the SQL side does on top of the scoring.
With ``--in-process`` it times ML.DETECT_ANOMALIES only, without a server or HTTP: the same statement through
``Jobs.query`` of services/bigquery in this process against ``detect_anomalies`` on the in-memory matrix, alternating,
CPU from ``time.process_time`` (all threads, nanoseconds: /proc's clock ticks are 10 ms, a tenth of the work), and
the parts of the SQL path alone (reading the table, the ML function, the query around it).
Not a test (pytest does not collect it): numbers depend on the box.

    .venv/bin/python benchmarks/bqml_bench.py [--rows 1000000] [--repeat 3] [--in-process]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from teardown import stop_on_signals

from services.testing.hyp import HypProcess

PROJECT = "bench-project"


def _cpu_s(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process, all its threads (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read(parquet: bytes) -> Any:
    """Parquet bytes as the Python path's feature matrix (column-major, as ``frame.to_numpy()``)."""
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(parquet)).to_pandas().to_numpy()


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each statement per path, alternating")
    parser.add_argument("--in-process", action="store_true", help="ML.DETECT_ANOMALIES in this process only")
    args = parser.parse_args()
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still stops the servers it started
    if args.in_process:
        in_process(args.rows, args.repeat)
        return

    import pyarrow as pa
    import pyarrow.parquet as pq
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from loadgen.dataset import labelled_purchases
    from models.training import fit

    frame = labelled_purchases(args.rows, 7)[["tax", "shipping", "value"]].astype(float)
    tmp = Path(tempfile.mkdtemp(prefix="bqml-bench-"))
    env_home = {"HYP_WAREHOUSE_DIR": str(tmp / "warehouse"), "HYP_PROJECT": PROJECT}
    server = HypProcess("bigquery", log_path=tmp / "bigquery.log", env=dict(os.environ, **env_home)).start(60)
    try:
        os.environ["BIGQUERY_EMULATOR_HOST"] = server.url
        client = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials())
        client.create_dataset("bench")
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
        parquet = buffer.getvalue()  # the loaded bytes: the Python path that reads its rows too
        buffer.seek(0)
        config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET)
        client.load_table_from_file(buffer, f"{PROJECT}.bench.purchases", job_config=config).result()
        n = client.get_table("bench.purchases").num_rows
        assert n == args.rows, n

        load_before = os.getloadavg()[0]
        warm = "SELECT CAST(x AS FLOAT64) AS tax, 1.0 AS shipping, 2.0 AS value FROM UNNEST([1, 2, 3, 40]) AS x"
        client.query_and_wait(f"CREATE MODEL bench.warm OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2) AS {warm}")
        fit("kmeans", frame.head(1000), {"num_clusters": 2}, unsupervised=True, min_rows=2)  # imports, both sides
        assert server.process is not None
        pid = server.process.pid

        def timed(work: Callable[[], Any], cpu_pid: int | str) -> tuple[float, float, Any]:
            """(wall seconds, CPU seconds of ``cpu_pid``, the work's result)."""
            cpu, t = _cpu_s(cpu_pid), time.perf_counter()
            out = work()
            return time.perf_counter() - t, _cpu_s(cpu_pid) - cpu, out

        create = (
            "CREATE OR REPLACE MODEL bench.km OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2) AS "
            "SELECT tax, shipping, value FROM bench.purchases"
        )
        detect = (
            "SELECT COUNTIF(is_anomaly) AS anomalies, COUNT(*) AS n FROM ML.DETECT_ANOMALIES(MODEL bench.km, "
            "STRUCT(0.01 AS contamination), TABLE bench.purchases)"
        )
        runs: dict[str, list[tuple[float, float]]] = {
            k: [] for k in ("sql_train", "py_train", "sql_det", "py_det", "py_read_det")
        }
        trained: Any = None
        for _ in range(args.repeat):  # alternating, so a change of the machine's load hits both paths
            wall, cpu, _out = timed(lambda: client.query_and_wait(create), pid)
            runs["sql_train"].append((wall, cpu))
            wall, cpu, trained = timed(
                lambda: fit("kmeans", frame, {"num_clusters": 2}, unsupervised=True, min_rows=2), "self"
            )
            runs["py_train"].append((wall, cpu))
        model = trained.model.detector.fitted
        X = frame.to_numpy()
        row: Any = None
        found: Any = None
        for _ in range(args.repeat):
            wall, cpu, (row,) = timed(lambda: list(client.query_and_wait(detect)), pid)
            runs["sql_det"].append((wall, cpu))
            wall, cpu, found = timed(lambda: model.detect_anomalies(X, 0.01), "self")
            runs["py_det"].append((wall, cpu))
            wall, cpu, _out = timed(lambda: model.detect_anomalies(_read(parquet), 0.01), "self")
            runs["py_read_det"].append((wall, cpu))
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
        rss = _rss_mib(pid)
        assert int(found["is_anomaly"].sum()) == row["anomalies"], (int(found["is_anomaly"].sum()), row["anomalies"])

        print(
            f"| what ({args.rows:,} rows, median of {args.repeat}) | SQL (`hyp bigquery`) | Python API "
            "| SQL / Python wall | SQL / Python CPU |"
        )
        print("|---|---|---|---|---|")
        for what, sql, py in (
            ("CREATE MODEL ... KMEANS, NUM_CLUSTERS=2", med["sql_train"], med["py_train"]),
            ("ML.DETECT_ANOMALIES, contamination 0.01", med["sql_det"], med["py_det"]),
        ):
            print(
                f"| {what} | {sql[0]:.2f} s ({args.rows / sql[0]:,.0f} rows/s), {sql[1]:.2f} CPU-s | "
                f"{py[0]:.2f} s ({args.rows / py[0]:,.0f} rows/s), {py[1]:.2f} CPU-s | {sql[0] / py[0]:.2f}x "
                f"| {sql[1] / py[1]:.2f}x |"
            )
        sql, py = med["sql_det"], med["py_read_det"]
        print(
            f"| ML.DETECT_ANOMALIES, the Python path reading the rows too (`pq.read_table` of the loaded Parquet "
            f"bytes, `to_pandas().to_numpy()`) | (as above) | {py[0]:.2f} s ({args.rows / py[0]:,.0f} rows/s), "
            f"{py[1]:.2f} CPU-s | {sql[0] / py[0]:.2f}x | {sql[1] / py[1]:.2f}x |"
        )
        print(f"| RSS of `hyp bigquery` after both | {rss:.0f} MiB | | |")
        print(f"| anomalies flagged (both paths) | {row['anomalies']:,} of {row['n']:,} | | |")
        print(f"| load average (1 min) before / after | {load_before:.1f} / {os.getloadavg()[0]:.1f} | | |")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def in_process(rows: int, repeat: int) -> None:
    """ML.DETECT_ANOMALIES through ``Jobs.query`` in this process vs the Python API, CPU-seconds by
    ``time.process_time``; then the SQL path's parts, each timed alone."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loadgen.dataset import labelled_purchases
    from services.bigquery.catalog import Catalog
    from services.bigquery.jobs import Jobs
    from services.bigquery.loads import run_load
    from services.bigquery.ml import kmeans, store

    frame = labelled_purchases(rows, 7)[["tax", "shipping", "value"]].astype(float)
    tmp = Path(tempfile.mkdtemp(prefix="bqml-bench-"))
    try:
        jobs = Jobs(Catalog(tmp / "warehouse"))
        jobs.catalog.create_dataset(PROJECT, {"datasetReference": {"projectId": PROJECT, "datasetId": "bench"}})
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
        target = {"projectId": PROJECT, "datasetId": "bench", "tableId": "purchases"}
        run_load(jobs.catalog, PROJECT, {"sourceFormat": "PARQUET", "destinationTable": target}, buffer.getvalue())

        def query(text: str) -> Any:
            return jobs.query(PROJECT, {"query": text, "useLegacySql": False})

        query(
            "CREATE MODEL bench.km OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2) AS "
            "SELECT tax, shipping, value FROM bench.purchases"
        )
        state = store.load(jobs.catalog, store.ModelRef(PROJECT, "bench", "km"))["state"]
        model, X = kmeans.restore(state), frame.to_numpy()
        table = jobs.catalog.read(PROJECT, "bench", "purchases")[1]
        detect = (
            "SELECT COUNTIF(is_anomaly) AS anomalies, COUNT(*) AS n FROM ML.DETECT_ANOMALIES(MODEL bench.km, "
            "STRUCT(0.01 AS contamination), TABLE bench.purchases)"
        )
        work: dict[str, Callable[[], Any]] = {
            "SQL: the whole query (`Jobs.query`)": lambda: query(detect),
            "Python API: `detect_anomalies` on the matrix": lambda: model.detect_anomalies(X, 0.01),
            "SQL part: reading the table (`Catalog.read`)": lambda: jobs.catalog.read(PROJECT, "bench", "purchases"),
            "SQL part: the ML function on the rows read (`kmeans.detect_anomalies`)": lambda: kmeans.detect_anomalies(
                state, table, 0.01
            ),
        }
        load_before = os.getloadavg()[0]
        cpu: dict[str, list[float]] = {k: [] for k in work}
        for _ in range(repeat):  # alternating
            for what, run in work.items():
                t = time.process_time()
                run()
                cpu[what].append(time.process_time() - t)
        med = {k: statistics.median(v) for k, v in cpu.items()}
        python = med["Python API: `detect_anomalies` on the matrix"]
        print(f"| ML.DETECT_ANOMALIES in process ({rows:,} rows, median of {repeat}) | CPU ms | / Python API |")
        print("|---|---|---|")
        for what, value in med.items():
            print(f"| {what} | {value * 1000:.1f} | {value / python:.2f}x |")
        print(f"| load average (1 min) before / after | {load_before:.1f} / {os.getloadavg()[0]:.1f} | |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
