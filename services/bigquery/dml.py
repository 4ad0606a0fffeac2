"""UPDATE, DELETE and MERGE on `hyp bigquery`'s tables: the rows are changed in DuckDB, then each partition
that changed is rewritten as one merged file that covers the files it replaces.

The statement runs on a temporary copy of the target's rows (every other table it names bound as in a
query, jobs.py), with two hidden columns: the partition folder a row came from and whether the statement
touched it. A partition whose rows changed is written whole to a hidden temporary file, fsynced and renamed
to ``*.merged.parquet`` (the commit); its Parquet metadata ``hyp.covers`` names every file it replaces, the
mechanism compaction uses (services/warehouse/live.py), so a reader drops them at once and a kill -9 at any
moment leaves each row exactly once: before the rename the old rows, after it the new ones. The covered
files are deleted ``GRACE_S`` later (a reader that listed them a moment before can still open them); if the
process dies first, they stay covered. Rows a MERGE inserts are appended as an INSERT appends them.
Partitions commit one by one: a statement spanning several partitions that is killed midway has changed
some of them (each row still once). Files appended while the statement runs are not covered, so they stay.
The statement holds an exclusive flock on ``.dml.lock`` in the table's data folder from listing to commit:
a compactor merging the same files at the same moment would cover them too (see ``_table_lock``).

BigQuery's restrictions checked here: UPDATE and DELETE need a WHERE clause, a target row may match at
most one source row (UPDATE ... FROM, MERGE), REQUIRED columns stay non-null, views are not modified.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlglot import exp

from services.bigquery.schema import Field, arrow_schema
from services.bigquery.sql import engine_error, invalid_query, translate
from services.common.files import fsync_dir
from services.warehouse.compaction import TABLE_LOCK_NAME

if TYPE_CHECKING:
    from services.bigquery.jobs import Jobs

TARGET = "__hyp_target"
PART, TOUCHED, ROWID = "__hyp_part", "__hyp_touched", "__hyp_rowid"
TMP_PREFIX = ".dml-"
LOCK_NAME = TABLE_LOCK_NAME  # in a table's data folder (the parent of its date=* partitions); compaction takes it too
GRACE_S = 60.0  # covered files are deleted this long after the commit
KINDS: dict[type[exp.Expr], str] = {exp.Update: "UPDATE", exp.Delete: "DELETE", exp.Merge: "MERGE"}
MULTIPLE_MATCHES = "UPDATE/MERGE must match at most one source row for each target row"

# Steps reported to ``on_step`` (the crash tests kill the process at each one).
STEPS = ("loaded", "temp_written", "committed", "inserted")
on_step: Callable[[str], None] | None = None

_lock = threading.Lock()  # one DML statement at a time: two rewriting the same files would both cover them


@dataclass
class Outcome:
    statement_type: str
    affected: int
    stats: dict[str, str] = field(default_factory=dict)  # BigQuery's dmlStats


def is_dml(tree: exp.Expr) -> bool:
    return type(tree) in KINDS


def run(jobs: Jobs, project: str, default_dataset: str | None, tree: exp.Expr, parameters: list[Any]) -> Outcome:
    """Run one UPDATE, DELETE or MERGE on a table of ``jobs.catalog`` (``parameters``: the job's
    queryParameters); the rows it changed."""
    from services.bigquery import workshop
    from services.bigquery.jobs import _parameters
    from services.bigquery.statements import _ref

    kind = KINDS[type(tree)]
    tree = tree.copy()
    if isinstance(tree, exp.Delete) and tree.args.get("tables") and not tree.this:  # DELETE d.t WHERE ...
        tree.set("this", tree.args["tables"][0])
        tree.set("tables", None)
    target = tree.this
    if not isinstance(target, exp.Table) or not target.name:
        raise invalid_query(f"{kind} needs a table to modify.")
    if kind != "MERGE" and tree.args.get("where") is None:
        raise invalid_query(f"{kind} must have a WHERE clause (WHERE true changes every row).")
    ref = _ref(target, project, default_dataset)
    catalog = jobs.catalog
    if workshop.is_builtin(ref[1], ref[2]):  # the stack's own folders, in the warehouse's flat shape
        raise invalid_query(
            f"{ref[1]}.{ref[2]} is written by the stack's services; DML statements modify API tables only."
        )
    resource = catalog.get_table(*ref)
    if resource.get("type") == "VIEW":
        raise invalid_query(f"Cannot modify view {ref[1]}.{ref[2]}: DML statements modify tables only.")
    fields = catalog.fields(*ref)
    _prepare(tree, target, fields)
    translation = translate(tree, project, default_dataset, keep={TARGET})
    args = _parameters(parameters, translation.named, translation.positional)
    schema = arrow_schema(fields)
    with _lock, _table_lock(catalog.files(*ref)):
        files = catalog.files(*ref)  # listed again under the lock: what the compactor left
        rows, before = _load(files, schema)
        _step("loaded")
        sources: dict[str, Any] = {}
        jobs._bind(translation, sources, 0)
        after, inserted, affected = _execute(jobs, sources, rows, tree, translation.sql, args, fields)
        changed = [p for p in before if p in after]
        for partition in changed:
            covered = {f.name for f in files if str(f.parent) == partition}
            _rewrite(Path(partition), after[partition].cast(schema), covered)
        if inserted.num_rows:
            from services.bigquery.statements import _append

            _append(catalog, ref, fields, inserted)
            _step("inserted")
    deleted = sum(before[p] - after[p].num_rows for p in after)
    updated = max(affected - inserted.num_rows - deleted, 0)
    stats = {"insertedRowCount": inserted.num_rows, "deletedRowCount": deleted, "updatedRowCount": updated}
    return Outcome(kind, affected, {k: str(v) for k, v in stats.items()})


@contextlib.contextmanager
def _table_lock(files: list[Path]) -> Iterator[None]:
    """Hold ``LOCK_NAME`` (an exclusive flock) in the table's data folder while the statement lists, rewrites
    and commits: compaction takes it too before merging a partition of an API table, so the two never both
    cover the same files (which would keep two copies of their rows live). No files: nothing to lock."""
    if not files:
        yield
        return
    fd = os.open(files[0].parent.parent / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a merge holds it for one partition's rewrite at most
        yield
    finally:
        os.close(fd)  # releases the flock


def _prepare(tree: exp.Expr, target: exp.Table, fields: tuple[Field, ...]) -> None:
    """The target becomes the temporary table (under its alias or name); every UPDATE marks what it touched;
    a MERGE's INSERT without a column list names the table's columns."""
    alias = target.alias or target.name
    target.replace(exp.alias_(exp.to_table(TARGET), alias, table=True))
    mark = exp.EQ(this=exp.column(TOUCHED), expression=exp.true())
    updates = [tree] if isinstance(tree, exp.Update) else []
    for when in tree.find_all(exp.When):
        action = when.args.get("then")
        if isinstance(action, exp.Update):
            updates.append(action)
        elif isinstance(action, exp.Insert):
            _merge_insert(action, fields)
    for update in updates:
        for assignment in update.expressions:  # SET t.col = ...: DuckDB names the column alone
            if isinstance(assignment.this, exp.Column):
                assignment.this.set("table", None)
        update.append("expressions", mark.copy())


def _merge_insert(insert: exp.Insert, fields: tuple[Field, ...]) -> None:
    columns = insert.this
    if isinstance(columns, exp.Var):
        raise invalid_query("MERGE ... INSERT ROW is not supported by hyp bigquery yet; name the columns.")
    if isinstance(columns, exp.Tuple) and not insert.args.get("expression"):  # INSERT VALUES (...)
        values = columns.expressions[0] if columns.expressions else None
        if not isinstance(values, exp.Anonymous) or str(values.this).upper() != "VALUES":
            raise invalid_query("MERGE ... INSERT needs VALUES (...).")
        if len(values.expressions) != len(fields):
            raise invalid_query(
                f"Inserted row has wrong column count; has {len(values.expressions)}, expected {len(fields)}"
            )
        insert.set("this", exp.Tuple(expressions=[exp.column(f.name, quoted=True) for f in fields]))
        insert.set("expression", exp.Tuple(expressions=values.expressions))


def _load(files: list[Path], schema: pa.Schema) -> tuple[pa.Table, dict[str, int]]:
    """The target's rows, with the partition folder each came from; and the row count of each partition."""
    import pyarrow.dataset as pds

    by_partition: dict[str, list[str]] = {}
    for path in files:
        by_partition.setdefault(str(path.parent), []).append(str(path))
    parts, before = [], {}
    for partition, paths in by_partition.items():
        data = pds.dataset(paths, schema=schema, format="parquet").to_table()
        before[partition] = data.num_rows
        parts.append(data.append_column(PART, pa.array([partition] * data.num_rows, pa.string())))
    extra = schema.append(pa.field(PART, pa.string()))
    rows = pa.concat_tables(parts) if parts else extra.empty_table()
    return rows.append_column(ROWID, pa.array(range(rows.num_rows), pa.int64())), before


def _execute(
    jobs: Jobs,
    sources: dict[str, Any],
    rows: pa.Table,
    tree: exp.Expr,
    sql: str,
    args: Any,
    fields: tuple[Field, ...],
) -> tuple[dict[str, pa.Table], pa.Table, int]:
    """Run the statement on a confined connection: the changed partitions' rows (partition -> rows),
    the inserted rows and BigQuery's affected count."""
    import duckdb

    from services.bigquery.jobs import _hugeint_to_int64, attach
    from services.warehouse import guard

    names = ", ".join('"' + f.name.replace('"', '""') + '"' for f in fields)
    con = guard.confined_connection(jobs.catalog.warehouse_dir)
    try:
        attach(con, sources)
        con.register("__hyp_rows", rows)
        con.execute(f"CREATE TEMP TABLE {TARGET} AS SELECT *, false AS {TOUCHED} FROM __hyp_rows")
        con.unregister("__hyp_rows")
        if isinstance(tree, exp.Update) and tree.args.get("from_") is not None:
            _check_single_match(con, tree, args)
        result = con.execute(sql, args).fetchone()
        affected = int(result[0]) if result else 0
        counts = dict(con.execute(f"SELECT {PART}, count(*) FROM {TARGET} GROUP BY 1").fetchall())
        touched = {p for (p,) in con.execute(f"SELECT DISTINCT {PART} FROM {TARGET} WHERE {TOUCHED}").fetchall()}
        before = _counts(rows)
        changed = {p for p in before if p is not None and (p in touched or counts.get(p, 0) != before[p])}
        after = {
            p: _hugeint_to_int64(con.sql(f"SELECT {names} FROM {TARGET} WHERE {PART} = ?", params=[p]).to_arrow_table())
            for p in changed
        }
        inserted = _hugeint_to_int64(con.sql(f"SELECT {names} FROM {TARGET} WHERE {PART} IS NULL").to_arrow_table())
    except duckdb.Error as exc:
        message = engine_error(guard.refusal(exc))
        if "more than once" in message:
            raise invalid_query(MULTIPLE_MATCHES) from None
        raise invalid_query(message) from None
    finally:
        con.close()
    for part in [*after.values(), inserted]:
        _check_required(part, fields)
    return after, inserted, affected


def _counts(rows: pa.Table) -> dict[str, int]:
    return {d["values"]: d["counts"] for d in pc.value_counts(rows.column(PART)).to_pylist() if d["values"]}


def _check_single_match(con: Any, tree: exp.Update, args: Any) -> None:
    """BigQuery refuses an UPDATE ... FROM where a target row matches several source rows."""
    alias = tree.this.alias_or_name
    probe = exp.select(exp.column(ROWID, table=alias)).from_(tree.this.copy())
    probe = probe.join(tree.args["from_"].this.copy(), join_type="cross")
    for join in tree.args.get("joins") or []:
        probe = probe.join(join.copy())
    where = tree.args["where"].this.copy()
    sql = probe.where(where).group_by(exp.column(ROWID, table=alias)).having("count(*) > 1").limit(1)
    text = sql.sql("duckdb")
    used = {k: v for k, v in (args or {}).items() if f"${k}" in text}  # the SET clause's stay out
    if con.execute(text, used or None).fetchall():
        raise invalid_query(MULTIPLE_MATCHES)


def _check_required(rows: pa.Table, fields: tuple[Field, ...]) -> None:
    for f in fields:
        if f.mode == "REQUIRED" and rows.column(f.name).null_count:
            raise invalid_query(f"Cannot assign NULL to REQUIRED column {f.name}.")


def _rewrite(partition: Path, rows: pa.Table, replaced: set[str]) -> None:
    """Commit ``rows`` as the partition's content: one merged file covering ``replaced`` (and what they
    cover, while on disk, so deleting any of them never uncovers another); the covered files go later."""
    from services.warehouse.live import COVERS_KEY, MERGED_SUFFIX, committed, covers

    on_disk = set(committed(partition))
    covered = set(replaced)
    for name in replaced:
        covered |= covers(partition / name) & on_disk
    final = f"part-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:12]}{MERGED_SUFFIX}"
    tmp = partition / f"{TMP_PREFIX}{uuid.uuid4().hex}.tmp"
    data = rows.replace_schema_metadata({COVERS_KEY: json.dumps(sorted(covered)).encode()})
    try:
        pq.write_table(data, tmp, compression="zstd")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _step("temp_written")
    os.rename(tmp, partition / final)
    fsync_dir(partition)
    _step("committed")
    timer = threading.Timer(GRACE_S, _unlink, [[partition / name for name in covered]])
    timer.daemon = True
    timer.start()


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _step(name: str) -> None:
    if on_step is not None:
        on_step(name)
