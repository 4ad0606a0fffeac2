"""DuckDB SQL over the warehouse tables, by their BigQuery names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb

from services.warehouse.tables import TABLES, WarehouseError

READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}


def files(warehouse_dir: str | os.PathLike[str], table_name: str) -> list[Path]:
    return sorted((Path(warehouse_dir) / table_name).glob("date=*/*.parquet"))


def connect(warehouse_dir: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per table (empty tables too).

    Views list the files when a query runs, so a long-lived connection sees new
    appends; ``ecommerce_sink.<table>`` works as well as the bare name.
    """
    con = duckdb.connect(":memory:")
    con.execute("CREATE SCHEMA IF NOT EXISTS ecommerce_sink")
    for name, spec in TABLES.items():
        pattern = str(Path(warehouse_dir) / name / "date=*" / "*.parquet").replace("'", "''")
        if files(warehouse_dir, name):
            source = f"read_parquet('{pattern}', union_by_name=true)"
        else:
            cols = ", ".join(f"CAST(NULL AS {_duck_type(f.type)}) AS {f.name}" for f in spec.schema)
            source = f"(SELECT {cols} WHERE false)"
        for qualified in (name, f"ecommerce_sink.{name}"):
            con.execute(f"CREATE OR REPLACE VIEW {qualified} AS SELECT * FROM {source}")
    return con


def _duck_type(arrow_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    if pa.types.is_integer(arrow_type):
        return "BIGINT"
    if pa.types.is_floating(arrow_type):
        return "DOUBLE"
    return "VARCHAR"


def check_read_only(sql: str) -> None:
    """Raise WarehouseError unless every statement only reads."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise WarehouseError(f"sql: {exc}") from None
    if not statements:
        raise WarehouseError("sql: empty query")
    for statement in statements:
        kind = statement.type.name
        if kind not in READ_ONLY_STATEMENTS:
            raise WarehouseError(f"sql: only SELECT is allowed here, got {kind}")


def query(warehouse_dir: str | os.PathLike[str], sql: str, *, read_only: bool = False):  # -> pyarrow.Table
    """Run SQL over the warehouse and return an Arrow table."""
    if read_only:
        check_read_only(sql)
    con = connect(warehouse_dir)
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        raise WarehouseError(f"sql: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
