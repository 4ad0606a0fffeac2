"""The output formats of `hyp sql` (:func:`render`: table, csv, json), and a read-only DuckDB SQL reader
over the stack's tables by name (:func:`main`), confined to the warehouse (services/warehouse/guard.py).

`hyp sql` itself is services/bigquery/sql_cli.py: BigQuery Standard SQL through `hyp bigquery`'s engine,
printed with :func:`render`. :func:`main` stays for the warehouse's own tests of DuckDB SQL over the flat
tables; no command runs it."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime

from services.common.config import Command, ConfigError
from services.warehouse.query import query
from services.warehouse.settings import WarehouseSettings
from services.warehouse.tables import TABLES, WarehouseError


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render(table, fmt: str, out=None, max_rows: int = 1000) -> None:  # table: pyarrow.Table
    out = out or sys.stdout
    rows = table.to_pylist()
    names = table.column_names
    if fmt == "json":
        for row in rows:
            out.write(json.dumps(row, default=_json_default) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
    else:
        shown = rows[:max_rows]
        cells = [[_cell(r[n]) for n in names] for r in shown]
        widths = [max([len(n)] + [len(c[i]) for c in cells]) for i, n in enumerate(names)]
        line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        out.write(line + "\n| " + " | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)) + " |\n")
        out.write(line + "\n")
        for c in cells:
            out.write("| " + " | ".join(v.rjust(w) for v, w in zip(c, widths, strict=True)) + " |\n")
        out.write(line + "\n")
        more = f" (first {max_rows} shown)" if len(rows) > max_rows else ""
        out.write(f"{len(rows)} row{'s' if len(rows) != 1 else ''}{more}\n")


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def command() -> Command[WarehouseSettings]:
    cli = Command(
        "sql",
        WarehouseSettings,
        description=f"Run a read-only DuckDB query over the warehouse tables ({', '.join(TABLES)}); "
        "`ecommerce_sink.<table>` works too. Files outside the warehouse, extensions and settings are refused.",
    )
    parser = cli.parser
    parser.add_argument("sql", help='the query, e.g. "SELECT count(*) FROM cloud_run"')
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    cli.flag("warehouse_dir", help="warehouse folder")
    parser.add_argument("--max-rows", type=int, default=1000, help="rows shown in table format")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    cli = command()
    try:
        args, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    root = settings.warehouse_dir
    try:
        result = query(root, args.sql, read_only=True)
    except WarehouseError as exc:
        print(f"hyp sql: {exc}", file=sys.stderr)
        return 2
    render(result, args.format, max_rows=args.max_rows)
    return 0
