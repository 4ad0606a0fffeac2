"""Atomic appends: each call writes whole new Parquet files, never touching old ones.

A file is written under a hidden temporary name in its partition folder and
renamed into place, so a reader's ``*.parquet`` glob sees either nothing or the
whole file; writers never share a file, so they never lock each other.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from services.warehouse import ecommerce
from services.warehouse.live import INSERT_IDS_KEY
from services.warehouse.tables import WarehouseError, table


def to_arrow(table_name: str, rows: Iterable[Mapping[str, Any]] | pa.Table) -> pa.Table:
    """Rows (dicts) or an Arrow table -> an Arrow table with the table's exact schema.

    Missing columns become nulls; unknown columns are an error naming them. In the event tables the
    workshop's ``ecommerce`` record and ``weekday`` are derived from the flat columns when not given.
    """
    schema = table(table_name).schema
    if isinstance(rows, pa.Table):
        data = rows
        given = set(data.column_names)
    else:
        rows = list(rows)
        given = {k for r in rows for k in r}
        unknown = sorted(given - set(schema.names))
        if unknown:
            raise WarehouseError(f"{table_name}: unknown column(s) {', '.join(unknown)}")
        try:
            data = pa.Table.from_pylist(rows, schema=pa.schema([f for f in schema if f.name in given]))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise WarehouseError(f"{table_name}: {exc}") from None
    unknown = sorted(set(data.column_names) - set(schema.names))
    if unknown:
        raise WarehouseError(f"{table_name}: unknown column(s) {', '.join(unknown)}")
    derived = _derived(schema, data, given)
    columns = []
    for field in schema:
        if field.name in derived:
            columns.append(derived[field.name])
        elif field.name in data.column_names:
            try:
                columns.append(data.column(field.name).cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise WarehouseError(f"{table_name}.{field.name}: {exc}") from None
        else:
            columns.append(pa.nulls(data.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _derived(schema: pa.Schema, data: pa.Table, given: set[str]) -> dict[str, pa.Array]:
    """The workshop's columns of an event table that the writer did not give, from the flat ones."""
    out: dict[str, pa.Array] = {}
    if "ecommerce" in schema.names and "ecommerce" not in given:
        try:
            out["ecommerce"] = ecommerce.nest(data)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise WarehouseError(f"ecommerce: {exc}") from None
    if "weekday" in schema.names and "weekday" not in given and "event_datetime" in data.column_names:
        out["weekday"] = ecommerce.weekday(data.column("event_datetime"))
    return out


# small appends favour write speed (snappy costs about half of zstd's CPU here); compaction rewrites them as zstd
APPEND_COMPRESSION = "snappy"


@dataclass(frozen=True)
class Prepared:
    """A file written whole and fsynced under a hidden temporary name, not yet committed: renaming ``tmp`` to
    ``final`` commits it (:func:`publish`), unlinking ``tmp`` drops it (:func:`discard`)."""

    tmp: Path
    final: Path


def prepare_atomic(data: pa.Table, folder: Path, insert_ids: Sequence[str] = ()) -> Prepared:
    """Write ``data`` as one new file of ``folder`` under a hidden temporary name, fsynced; nothing is visible yet.
    ``insert_ids``, the BigQuery insertIds of its rows, go in the file's key-value metadata (``INSERT_IDS_KEY``)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"part-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:12]}.parquet"  # names sort in time order
    tmp = folder / f".{name}.tmp"
    try:
        if insert_ids:
            with pq.ParquetWriter(tmp, data.schema, compression=APPEND_COMPRESSION) as writer:
                writer.write_table(data)
                writer.add_key_value_metadata({INSERT_IDS_KEY: json.dumps(list(insert_ids), separators=(",", ":"))})
        else:  # the stack's writers (the detector's commit path): as before
            pq.write_table(data, tmp, compression=APPEND_COMPRESSION)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Prepared(tmp, folder / name)


def publish(prepared: Iterable[Prepared]) -> list[Path]:
    """Commit prepared files (a rename each); the committed paths."""
    out = []
    for p in prepared:
        os.replace(p.tmp, p.final)
        out.append(p.final)
    return out


def discard(prepared: Iterable[Prepared]) -> None:
    """Drop prepared files that will not be committed."""
    for p in prepared:
        p.tmp.unlink(missing_ok=True)


def write_atomic(data: pa.Table, folder: Path, insert_ids: Sequence[str] = ()) -> Path:
    """Write ``data`` as one new file of ``folder`` (commit: a rename). ``insert_ids``, the BigQuery insertIds of
    its rows, go in the file's key-value metadata (``INSERT_IDS_KEY``): committed with the rows, in one rename."""
    return publish([prepare_atomic(data, folder, insert_ids)])[0]


def prepare(
    warehouse_dir: str | os.PathLike[str],
    table_name: str,
    rows: Iterable[Mapping[str, Any]] | pa.Table,
    insert_ids: Sequence[str | None] | None = None,
) -> list[Prepared]:
    """:func:`append`'s files, one per date partition, written and fsynced but not committed: the caller commits
    them (:func:`publish`), with other tables' files of the same transaction, or drops them (:func:`discard`).
    A refused row raises WarehouseError before any file is written."""
    data = to_arrow(table_name, rows)
    if data.num_rows == 0:
        return []
    spec = table(table_name)
    root = Path(warehouse_dir) / table_name
    times = data.column(spec.time_column)
    if times.null_count:
        raise WarehouseError(f"{table_name}.{spec.time_column}: {times.null_count} row(s) without a time")
    dates = pc.cast(pc.cast(times, pa.date32()), pa.string())  # YYYY-MM-DD; strftime cost 10x as much
    written: list[Prepared] = []
    try:
        for date in pc.unique(dates).to_pylist():
            mask = pc.equal(dates, date)
            ids = pa.array(insert_ids, pa.string()).filter(mask).drop_null().to_pylist() if insert_ids else ()
            written.append(prepare_atomic(data.filter(mask), root / f"date={date}", ids))
    except BaseException:
        discard(written)
        raise
    return written


def append(
    warehouse_dir: str | os.PathLike[str],
    table_name: str,
    rows: Iterable[Mapping[str, Any]] | pa.Table,
    insert_ids: Sequence[str | None] | None = None,
) -> list[Path]:
    """Append rows to a table as new files, one per date partition; return the files written. ``insert_ids``
    (one per row, None for a row without one) are kept in the files that hold their rows (write_atomic)."""
    return publish(prepare(warehouse_dir, table_name, rows, insert_ids))
