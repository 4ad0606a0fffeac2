"""DDL and DML in a query job: CREATE TABLE [AS SELECT], CREATE VIEW, DROP TABLE/VIEW, INSERT.

Each maps onto the catalog (a table created, a view stored, rows appended through insertAll's
conversion); UPDATE, DELETE and MERGE rewrite stored rows and are refused for now (invalidQuery).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlglot import exp

from services.bigquery import errors
from services.bigquery.catalog import Catalog
from services.bigquery.schema import CANONICAL, Field, RowError, convert_row, row_type
from services.bigquery.sql import invalid_query

# runs a SELECT (a syntax tree) and answers (fields, rows)
Select = Callable[[exp.Expr], tuple[tuple[Field, ...], pa.Table]]


@dataclass
class Outcome:
    statement_type: str
    affected: int | None = None


def run(catalog: Catalog, project: str, default_dataset: str | None, tree: exp.Expr, select: Select) -> Outcome:
    if str(tree.args.get("kind") or "").upper() == "MODEL":  # BigQuery ML: CREATE / DROP MODEL
        from services.bigquery.ml import statements as ml

        return Outcome(ml.run(catalog, project, default_dataset, tree, select))
    if isinstance(tree, exp.Create):
        return _create(catalog, project, default_dataset, tree, select)
    if isinstance(tree, exp.Drop):
        return _drop(catalog, project, default_dataset, tree)
    if isinstance(tree, exp.Insert):
        return _insert(catalog, project, default_dataset, tree, select)
    raise invalid_query(f"Statement type {tree.key.upper()} is not supported by hyp bigquery yet.")


def _ref(table: exp.Table | None, project: str, default_dataset: str | None) -> tuple[str, str, str]:
    if table is None or not table.name:
        raise invalid_query("The statement names no table.")
    dataset = table.db or default_dataset
    if not dataset:
        raise invalid_query(f'Table "{table.name}" must be qualified with a dataset (e.g. dataset.table).')
    return table.catalog or project, dataset, table.name


def _create(catalog: Catalog, project: str, default_dataset: str | None, tree: exp.Create, select: Select) -> Outcome:
    kind = str(tree.args.get("kind") or "").upper()
    if kind not in ("TABLE", "VIEW"):
        raise invalid_query(f"CREATE {kind} is not supported by hyp bigquery yet.")
    target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    ref = _ref(target if isinstance(target, exp.Table) else None, project, default_dataset)
    exists = _exists(catalog, *ref)
    if exists and tree.args.get("exists"):
        return Outcome(f"CREATE_{kind}")
    if exists and tree.args.get("replace"):
        catalog.delete_table(*ref)
    body: dict[str, Any] = {"tableReference": dict(zip(("projectId", "datasetId", "tableId"), ref, strict=True))}
    source = tree.expression
    if kind == "VIEW":
        if not isinstance(source, exp.Query):
            raise invalid_query("CREATE VIEW needs AS SELECT ...")
        fields, _ = select(exp.select("*").from_(source.subquery()).limit(0))
        body |= {"view": {"query": source.sql("bigquery"), "useLegacySql": False}}
        body["schema"] = {"fields": [f.to_api() for f in fields]}
        catalog.create_table(ref[0], ref[1], body)
        return Outcome("CREATE_VIEW")
    rows = None
    if isinstance(source, exp.Query):
        fields, rows = select(source)
    elif isinstance(tree.this, exp.Schema):
        fields = tuple(_column(c) for c in tree.this.expressions if isinstance(c, exp.ColumnDef))
    else:
        raise invalid_query("CREATE TABLE needs a column list or AS SELECT ...")
    body["schema"] = {"fields": [f.to_api() for f in fields]}
    catalog.create_table(ref[0], ref[1], body)
    if rows is not None:
        with _dropped_on_failure(catalog, ref):
            _append(catalog, ref, fields, rows)
    return Outcome("CREATE_TABLE_AS_SELECT" if rows is not None else "CREATE_TABLE", rows.num_rows if rows else None)


def _column(column: exp.ColumnDef) -> Field:
    required = any(isinstance(c.args.get("kind"), exp.NotNullColumnConstraint) for c in column.constraints)
    field = _type(column.name, column.args["kind"])
    return Field(field.name, field.type, "REQUIRED", field.fields) if required and field.mode != "REPEATED" else field


def _type(name: str, kind: exp.DataType) -> Field:
    if kind.is_type(exp.DataType.Type.ARRAY):
        inner = _type(name, kind.expressions[0])
        return Field(name, inner.type, "REPEATED", inner.fields)
    if kind.is_type(exp.DataType.Type.STRUCT):
        children = []
        for child in kind.expressions:
            if not isinstance(child, exp.ColumnDef):
                raise invalid_query(f"Unnamed STRUCT fields are not supported: {kind.sql('bigquery')}")
            children.append(_column(child))
        return Field(name, "RECORD", "NULLABLE", tuple(children))
    text = kind.sql("bigquery").upper().split("(")[0].strip()
    canonical = CANONICAL.get(text)
    if canonical is None:
        raise invalid_query(f"Type {text} is not supported by hyp bigquery.")
    return Field(name, canonical)


def _drop(catalog: Catalog, project: str, default_dataset: str | None, tree: exp.Drop) -> Outcome:
    kind = str(tree.args.get("kind") or "").upper()
    if kind not in ("TABLE", "VIEW"):
        raise invalid_query(f"DROP {kind} is not supported by hyp bigquery yet.")
    ref = _ref(tree.find(exp.Table), project, default_dataset)
    if not _exists(catalog, *ref):
        if tree.args.get("exists"):
            return Outcome(f"DROP_{kind}")
        raise errors.not_found(f"Table {ref[0]}:{ref[1]}.{ref[2]}")
    if (catalog.get_table(*ref).get("type") == "VIEW") != (kind == "VIEW"):
        raise invalid_query(
            f"{ref[1]}.{ref[2]} is not a {kind.lower()}; use DROP {'TABLE' if kind == 'VIEW' else 'VIEW'}."
        )
    catalog.delete_table(*ref)
    return Outcome(f"DROP_{kind}")


def _insert(catalog: Catalog, project: str, default_dataset: str | None, tree: exp.Insert, select: Select) -> Outcome:
    target = tree.this
    columns = None
    if isinstance(target, exp.Schema):
        columns = [c.name for c in target.expressions]
        target = target.this
    ref = _ref(target if isinstance(target, exp.Table) else None, project, default_dataset)
    fields = catalog.fields(*ref)
    source = tree.expression
    if isinstance(source, exp.Values):
        source = exp.select("*").from_(exp.Subquery(this=source))
    if not isinstance(source, exp.Query):
        raise invalid_query("INSERT needs VALUES or a SELECT.")
    _, rows = select(source)
    names = columns or [f.name for f in fields]
    if rows.num_columns != len(names):
        raise invalid_query(f"Inserted row has wrong column count; has {rows.num_columns}, expected {len(names)}")
    _append(catalog, ref, fields, rows.rename_columns(names))
    return Outcome("INSERT", rows.num_rows)


def _append(
    catalog: Catalog, ref: tuple[str, str, str], fields: tuple[Field, ...], rows: pa.Table, truncate: bool = False
) -> None:
    root = row_type(fields)
    converted = []
    for number, row in enumerate(rows.to_pylist(), 1):
        try:
            converted.append(convert_row(row, root, ignore_unknown=False))
        except RowError as exc:
            raise invalid_query(f"Row {number}: {exc.message}") from None
    catalog.append_converted(*ref, converted, truncate=truncate, schema=fields if truncate else None)


def _exists(catalog: Catalog, project: str, dataset: str, table: str) -> bool:
    try:
        catalog.get_table(project, dataset, table)
    except errors.BigQueryError as exc:
        if exc.code == 404 and "Dataset" in exc.message:
            raise
        return False
    return True


def write_table(
    catalog: Catalog,
    ref: tuple[str, str, str],
    fields: tuple[Field, ...],
    rows: pa.Table,
    write: str,
    create: str,
) -> None:
    """A query's destination table or a copy's: created when needed, then WRITE_APPEND, WRITE_EMPTY or
    WRITE_TRUNCATE (a new generation of the table's data with the rows' schema, committed at once)."""
    write, create = write.upper(), create.upper()
    if write not in ("WRITE_APPEND", "WRITE_EMPTY", "WRITE_TRUNCATE"):
        raise errors.invalid(f"Invalid writeDisposition {write}.")
    truncate = created = False
    if _exists(catalog, *ref):
        if write == "WRITE_EMPTY" and int(catalog.get_table(*ref)["numRows"]):
            raise errors.duplicate(f"Table {ref[0]}:{ref[1]}.{ref[2]} is not empty (writeDisposition WRITE_EMPTY)")
        truncate = write == "WRITE_TRUNCATE"  # the rows and the schema are replaced
        fields = fields if truncate else catalog.fields(*ref)
    elif create == "CREATE_NEVER":
        raise errors.not_found(f"Table {ref[0]}:{ref[1]}.{ref[2]}")
    else:
        reference = dict(zip(("projectId", "datasetId", "tableId"), ref, strict=True))
        catalog.create_table(
            ref[0], ref[1], {"tableReference": reference, "schema": {"fields": [f.to_api() for f in fields]}}
        )
        created = True
    with _dropped_on_failure(catalog, ref) if created else contextlib.nullcontext():
        names = [f.name for f in fields]
        if rows.num_columns != len(names):
            raise errors.invalid(f"The rows have {rows.num_columns} columns; table {ref[2]} has {len(names)}.")
        _append(catalog, ref, fields, rows.rename_columns(names), truncate)


@contextlib.contextmanager
def _dropped_on_failure(catalog: Catalog, ref: tuple[str, str, str]) -> Iterator[None]:
    """A table created for a statement's rows goes again if they cannot be written (a bad row, a full disk):
    BigQuery creates it with its rows or not at all."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            catalog.delete_table(*ref)
        raise
