"""`hyp sql "SELECT ..."`: one read-only BigQuery Standard SQL query over the warehouse, through the same
engine as `hyp bigquery`'s jobs (services/bigquery/engine.py), with no server running.

Unqualified tables are found in the workshop's dataset ``ecommerce_sink`` (``cloud_run``,
``ecommerce_sink.cloud_run`` and ```project.ecommerce_sink.cloud_run``` name the same table); other
datasets of `hyp bigquery` are named ``dataset.table``. Anything but a query, and anything reaching outside
the warehouse (files, extensions, settings), is refused in one line, exit code 2.

BigQuery ML's model statements (``CREATE [OR REPLACE] MODEL``, ``DROP MODEL``, ``EXPORT MODEL``) run too, in this
process on the same warehouse as `hyp bigquery` would run them; a CREATE MODEL shows a progress bar on stderr
(reading the training query, training with its iterations, saving: services/bigquery/ml/progress.py).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Sequence
from typing import Any

from services.common.config import Command, ConfigError
from services.warehouse.settings import WarehouseSettings
from services.warehouse.sql_cli import render


def command() -> Command[WarehouseSettings]:
    cli = Command(
        "sql",
        WarehouseSettings,
        description="Run a read-only BigQuery Standard SQL query over the warehouse, as `hyp bigquery` runs it: "
        "unqualified tables (cloud_run, cloud_run_anomaly, dataflow, dataflow_anomaly, pubsub_direct) are in "
        "dataset ecommerce_sink. "
        "Statements other than queries, files outside the warehouse, extensions and settings are refused.",
    )
    parser = cli.parser
    parser.add_argument("sql", help='the query, e.g. "SELECT count(*) FROM cloud_run"')
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    cli.flag("warehouse_dir", help="warehouse folder")
    cli.flag("project", help="project of unqualified names (HYP_PROJECT)")
    parser.add_argument("--max-rows", type=int, default=1000, help="rows shown in table format")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar for CREATE MODEL")
    return cli


MODEL_STATEMENT = re.compile(r"\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?MODEL|DROP\s+MODEL|EXPORT\s+MODEL)\b", re.IGNORECASE)
POLL_S = 0.2


def run_model_statement(warehouse_dir: Any, sql: str, project: str, show: bool = True) -> str:
    """One BigQuery ML statement on the warehouse (unqualified names in ``ecommerce_sink``), with a progress bar
    on stderr while a CREATE MODEL trains; the statement's type (``CREATE_MODEL`` ...). BigQueryError when refused."""
    from tqdm import tqdm

    from services.bigquery.catalog import Catalog
    from services.bigquery.engine import WORKSHOP_DATASET
    from services.bigquery.jobs import Jobs
    from services.bigquery.ml import progress

    jobs = Jobs(Catalog(warehouse_dir))
    body = {
        "query": sql,
        "useLegacySql": False,
        "defaultDataset": {"projectId": project, "datasetId": WORKSHOP_DATASET},
    }
    shared: list[progress.Progress] = [progress.Progress()]  # the running job's, once it started
    outcome: dict[str, Any] = {}

    def work() -> None:
        with progress.job() as running:
            shared[0] = running
            try:
                job = jobs.query(project, body)
                outcome["type"] = job.resource["statistics"]["query"]["statementType"]
            except BaseException as exc:  # handed to the caller's thread
                outcome["error"] = exc

    worker = threading.Thread(target=work, name="hyp-sql-model", daemon=True)
    worker.start()
    bar = tqdm(total=100, desc="CREATE MODEL", unit="%", file=sys.stderr, disable=not show)
    try:
        while worker.is_alive():
            worker.join(POLL_S)  # bounded wait, then the bar catches up
            _advance(bar, shared[0])
        _advance(bar, shared[0])
    finally:
        bar.close()
    if "error" in outcome:
        raise outcome["error"]
    return str(outcome.get("type", "DONE"))


def _advance(bar: Any, report: Any) -> None:
    statistics = report.statistics()
    stats, stage = statistics.get("mlStatistics", {}), statistics.get("hypProgress", {}).get("stage")
    if stage is not None:
        bar.set_postfix_str(f"{stage.lower()} {len(stats.get('iterationResults', []))} iterations", refresh=False)
    target = round(report.fraction() * 100)
    if target > bar.n:
        bar.update(target - bar.n)


def main(argv: Sequence[str] | None = None) -> int:
    cli = command()
    try:
        args, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    from services.bigquery.engine import BigQueryError, run_query

    if MODEL_STATEMENT.match(args.sql):
        try:
            print(run_model_statement(settings.warehouse_dir, args.sql, settings.project, args.progress))
        except BigQueryError as exc:
            print(f"hyp sql: {exc.message}", file=sys.stderr)
            return 2
        return 0
    try:
        result = run_query(settings.warehouse_dir, args.sql, project=settings.project)
    except BigQueryError as exc:
        print(f"hyp sql: {exc.message}", file=sys.stderr)
        return 2
    try:
        render(result, args.format, max_rows=args.max_rows)
        sys.stdout.flush()
    except BrokenPipeError:  # `hyp sql ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return 0
