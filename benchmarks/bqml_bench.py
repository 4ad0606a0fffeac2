"""BigQuery ML in `hyp bigquery` vs the Python API on the same rows: CREATE MODEL ... KMEANS over N purchases
(tax, shipping, value) and ML.DETECT_ANOMALIES over them, seconds and rows/s, and the RSS of `hyp bigquery`.

Starts `hyp bigquery` on a free port with a temporary warehouse, loads the rows as one Parquet load job,
then, after one tiny warm-up model on each side (imports), times one run each:
- SQL: `CREATE MODEL` through Google's client (the query, the transfer into Python, training, storing);
  `SELECT COUNTIF(is_anomaly), COUNT(*) FROM ML.DETECT_ANOMALIES(..., TABLE t)` (every row scored in the
  server, a one-row answer), ``--repeat`` times, alternating with the Python path; the median of each.
- Python: `models.training.fit("kmeans", ...)` as `hyp train --model kmeans` runs it (on the rows already
  in memory), and `BqmlKMeans.detect_anomalies` on the same matrix.
Not a test (pytest does not collect it): numbers depend on the box.

    .venv/bin/python benchmarks/bqml_bench.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.testing.hyp import HypProcess

PROJECT = "bench-project"


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="ML.DETECT_ANOMALIES runs per path, alternating")
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from loadgen.dataset import labelled_purchases
    from models.training import fit

    frame = labelled_purchases(args.rows, 7)[["tax", "shipping", "value"]].astype(float)
    tmp = Path(tempfile.mkdtemp(prefix="bqml-bench-"))
    env_home = {"HYP_WAREHOUSE_DIR": str(tmp / "warehouse"), "HYP_PROJECT": PROJECT}
    import os

    server = HypProcess("bigquery", log_path=tmp / "bigquery.log", env=dict(os.environ, **env_home)).start(60)
    try:
        os.environ["BIGQUERY_EMULATOR_HOST"] = server.url
        client = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials())
        client.create_dataset("bench")
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
        buffer.seek(0)
        config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET)
        client.load_table_from_file(buffer, f"{PROJECT}.bench.purchases", job_config=config).result()
        n = client.get_table("bench.purchases").num_rows
        assert n == args.rows, n

        load_before = os.getloadavg()[0]
        warm = "SELECT CAST(x AS FLOAT64) AS tax, 1.0 AS shipping, 2.0 AS value FROM UNNEST([1, 2, 3, 40]) AS x"
        client.query_and_wait(f"CREATE MODEL bench.warm OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2) AS {warm}")
        fit("kmeans", frame.head(1000), {"num_clusters": 2}, unsupervised=True, min_rows=2)  # imports, both sides
        t = time.perf_counter()
        client.query_and_wait(
            "CREATE MODEL bench.km OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2) AS "
            "SELECT tax, shipping, value FROM bench.purchases"
        )
        sql_train = time.perf_counter() - t
        t = time.perf_counter()
        trained = fit("kmeans", frame, {"num_clusters": 2}, unsupervised=True, min_rows=2)
        py_train = time.perf_counter() - t
        model = trained.model.detector.fitted
        X = frame.to_numpy()
        sql_runs, py_runs = [], []
        for _ in range(args.repeat):  # alternating, so a change of the machine's load hits both paths
            t = time.perf_counter()
            (row,) = client.query_and_wait(
                "SELECT COUNTIF(is_anomaly) AS anomalies, COUNT(*) AS n FROM ML.DETECT_ANOMALIES(MODEL bench.km, "
                "STRUCT(0.01 AS contamination), TABLE bench.purchases)"
            )
            sql_runs.append(time.perf_counter() - t)
            t = time.perf_counter()
            found = model.detect_anomalies(X, 0.01)
            py_runs.append(time.perf_counter() - t)
        sql_detect, py_detect = statistics.median(sql_runs), statistics.median(py_runs)
        rss = _rss_mib(server.process.pid) if server.process else float("nan")
        assert int(found["is_anomaly"].sum()) == row["anomalies"], (int(found["is_anomaly"].sum()), row["anomalies"])

        print(f"| what ({args.rows:,} rows) | SQL (`hyp bigquery`) | Python API | SQL / Python |")
        print("|---|---|---|---|")
        for what, sql, py in (
            ("CREATE MODEL ... KMEANS, NUM_CLUSTERS=2", sql_train, py_train),
            (f"ML.DETECT_ANOMALIES, contamination 0.01 (median of {args.repeat})", sql_detect, py_detect),
        ):
            print(
                f"| {what} | {sql:.2f} s ({args.rows / sql:,.0f} rows/s) | {py:.2f} s "
                f"({args.rows / py:,.0f} rows/s) | {sql / py:.2f}x |"
            )
        print(f"| RSS of `hyp bigquery` after both | {rss:.0f} MiB | | |")
        print(f"| anomalies flagged (both paths) | {row['anomalies']:,} of {row['n']:,} | | |")
        print(f"| load average (1 min) before / after | {load_before:.1f} / {os.getloadavg()[0]:.1f} | | |")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
