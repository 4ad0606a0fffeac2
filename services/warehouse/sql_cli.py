"""The output formats of `hyp sql` (:func:`render`: table, csv, json).

`hyp sql` itself is services/bigquery/sql_cli.py: BigQuery Standard SQL through `hyp bigquery`'s engine,
printed with :func:`render`."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date, datetime


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
