"""`hyp sql "SELECT ..."`: one read-only BigQuery Standard SQL query over the warehouse, through the same
engine as `hyp bigquery`'s jobs (services/bigquery/engine.py), with no server running.

Unqualified tables are found in the workshop's dataset ``ecommerce_sink`` (``cloud_run``,
``ecommerce_sink.cloud_run`` and ```project.ecommerce_sink.cloud_run``` name the same table); other
datasets of `hyp bigquery` are named ``dataset.table``. Anything but a query, and anything reaching outside
the warehouse (files, extensions, settings), is refused in one line, exit code 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from services.common.config import Command, ConfigError
from services.warehouse.settings import WarehouseSettings
from services.warehouse.sql_cli import render


def command() -> Command[WarehouseSettings]:
    cli = Command(
        "sql",
        WarehouseSettings,
        description="Run a read-only BigQuery Standard SQL query over the warehouse, as `hyp bigquery` runs it: "
        "unqualified tables (cloud_run, cloud_run_anomaly, pubsub_direct) are in dataset ecommerce_sink. "
        "Statements other than queries, files outside the warehouse, extensions and settings are refused.",
    )
    parser = cli.parser
    parser.add_argument("sql", help='the query, e.g. "SELECT count(*) FROM cloud_run"')
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    cli.flag("warehouse_dir", help="warehouse folder")
    cli.flag("project", help="project of unqualified names (HYP_PROJECT)")
    parser.add_argument("--max-rows", type=int, default=1000, help="rows shown in table format")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    cli = command()
    try:
        args, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    from services.bigquery.engine import BigQueryError, run_query

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
