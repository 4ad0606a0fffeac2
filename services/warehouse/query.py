"""DuckDB SQL over the warehouse tables, by their BigQuery names."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from services.warehouse.guard import check_read_only, confined_connection, refusal
from services.warehouse.live import live_files
from services.warehouse.tables import TABLES, WarehouseError

__all__ = ["QueryTimeout", "check_read_only", "connect", "files", "query", "refresh"]


class QueryTimeout(WarehouseError):
    """The query ran past its ``timeout_s`` and DuckDB interrupted it."""


def files(warehouse_dir: str | os.PathLike[str], table_name: str) -> list[Path]:
    """The table's live files: committed and not replaced by a merged file (see live.py)."""
    return live_files(warehouse_dir, table_name)


def connect(warehouse_dir: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per table (empty tables too), confined to the
    warehouse folder (``guard.confined_connection``: no other file, no extension, settings locked).

    The views name the live files at the time they are made: call ``refresh`` before
    a query on a long-lived connection to see new appends and compactions.
    ``ecommerce_sink.<table>`` works as well as the bare name.
    """
    con = confined_connection(warehouse_dir)
    con.execute("CREATE SCHEMA IF NOT EXISTS ecommerce_sink")
    refresh(con, warehouse_dir)
    return con


def refresh(con: duckdb.DuckDBPyConnection, warehouse_dir: str | os.PathLike[str]) -> None:
    """(Re)create the table views over the live files as they are now."""
    for name, spec in TABLES.items():
        paths = files(warehouse_dir, name)
        if paths:
            listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
            source = f"read_parquet([{listed}], union_by_name=true)"
        else:  # no file yet: the table's own Arrow schema, so every column (nested ones too) keeps its type
            source = f"_empty_{name}"
            con.register(source, spec.schema.empty_table())
        for qualified in (name, f"ecommerce_sink.{name}"):
            con.execute(f"CREATE OR REPLACE VIEW {qualified} AS SELECT * FROM {source}")


def query(
    warehouse_dir: str | os.PathLike[str],
    sql: str,
    *,
    read_only: bool = False,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
):  # -> pyarrow.Table
    """Run SQL over the warehouse and return an Arrow table.

    The connection is confined to the warehouse (see ``guard``); ``read_only=True`` also refuses any
    statement but a query: pass it for SQL that is not the caller's own (the labs' checks). What a user
    types (``hyp sql``, the console's SQL box) is BigQuery SQL and goes through services/bigquery/engine.py.
    ``timeout_s`` interrupts the query inside DuckDB when it runs longer (QueryTimeout), so a runaway
    query stops using the CPU instead of running on after its caller gave up.

    ``params`` are DuckDB prepared-statement values (``?`` or ``$name``). If a file
    vanished between listing and reading (compaction deleted it after its grace
    period), the files are listed again and the query runs once more.
    """
    if read_only:
        check_read_only(sql)
    con = connect(warehouse_dir)
    timer = threading.Timer(timeout_s, con.interrupt) if timeout_s is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        try:
            return con.sql(sql, params=params).to_arrow_table()
        except duckdb.IOException:
            refresh(con, warehouse_dir)
            return con.sql(sql, params=params).to_arrow_table()
    except duckdb.InterruptException:
        raise QueryTimeout(f"sql: no answer within {timeout_s:g} s, the query was stopped") from None
    except duckdb.Error as exc:
        raise WarehouseError(refusal(exc)) from None
    finally:
        if timer is not None:
            timer.cancel()
        con.close()
