"""Datasets and tables of `hyp bigquery`, kept under the warehouse folder.

``<warehouse>/_bigquery/<project>/<dataset>/dataset.json`` holds a dataset's resource,
``.../tables/<table>/table.json`` a table's, and the table's rows are Parquet files beside it in
``date=<partition>`` folders written by the warehouse's own atomic writer (services/warehouse/writer.py)
and read back through its live-file listing (services/warehouse/live.py): a file is whole or absent, so
a kill -9 loses no committed row and leaves no half row. Metadata files are replaced atomically too.

Dataset ``ecommerce_sink`` of every project also serves the stack's own warehouse tables (workshop.py):
their resources are made from code, their rows are the warehouse's folders, and rows inserted through the
API go through the warehouse's writer into the folder the processor writes (one catalog).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from services.bigquery import errors, workshop
from services.bigquery.names import check_dataset, check_project, check_table
from services.bigquery.schema import Field, RowError, arrow_schema, convert_row, parse_fields, row_type
from services.common.files import replace_atomically
from services.warehouse import live
from services.warehouse.live import live_files
from services.warehouse.tables import WarehouseError
from services.warehouse.writer import append, write_atomic

ROOT = "_bigquery"
UNPARTITIONED = "date=__UNPARTITIONED__"
NULL_PARTITION = "date=__NULL__"
PARTITION_TYPES = ("DAY",)  # HOUR, MONTH and YEAR partitioning: not yet


def _now_ms() -> str:
    return str(int(time.time() * 1000))


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``data`` atomically and durably (the caller holds the lock of what it writes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, json.dumps(data).encode())


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


@dataclass
class InsertResult:
    inserted: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # BigQuery's insertErrors


class _Dedup:
    """insertIds seen in the last ``window_s`` seconds, at most ``max_ids`` (best effort, as on BigQuery)."""

    def __init__(self, window_s: float, max_ids: int) -> None:
        self.window_s, self.max_ids = window_s, max_ids
        self.seen: OrderedDict[str, float] = OrderedDict()

    def _prune(self, now: float) -> None:
        while self.seen and (len(self.seen) > self.max_ids or next(iter(self.seen.values())) < now - self.window_s):
            self.seen.popitem(last=False)

    def fresh(self, ids: Iterable[str | None]) -> list[bool]:
        """For each id: True unless it was seen (None is always fresh); does not record them."""
        self._prune(time.monotonic())
        out, batch = [], set()
        for i in ids:
            dup = i is not None and (i in self.seen or i in batch)
            out.append(not dup)
            if i is not None:
                batch.add(i)
        return out

    def record(self, ids: Iterable[str], age_s: float = 0.0) -> None:
        now = time.monotonic()
        for i in ids:
            self.seen[i] = now - age_s
            self.seen.move_to_end(i)
        self._prune(now)

    def load(self, data: Path) -> None:
        """The ids committed in the last ``window_s`` by any process before this one: from the footers of the
        data folder's files written in the window (writer.write_atomic keeps them there), oldest first. A
        folder last changed before the window holds none of them, so only recent partitions are listed."""
        since = time.time() - self.window_s
        recent: list[tuple[float, Path]] = []
        for partition in live.partitions(data.parent, data.name):
            try:
                if partition.stat().st_mtime < since:
                    continue
                for name in live.committed(partition):
                    mtime = (partition / name).stat().st_mtime
                    if mtime >= since:
                        recent.append((mtime, partition / name))
            except FileNotFoundError:
                continue
        for mtime, path in sorted(recent):
            self.record(live.insert_ids(path), age_s=max(0.0, time.time() - mtime))


Footer = live.LiveFile  # what a query needs from a live Parquet file's footer: its path, bytes, rows, schema


def footer(path: Path) -> Footer | None:
    """The file's footer, read once per file (live.footer's cache, shared with the warehouse's damage check);
    None for a file gone meanwhile (compaction replaced it) or damaged (moved aside by the next listing)."""
    try:
        size, rows, schema = live.footer(path)
    except FileNotFoundError:
        return None
    return None if isinstance(schema, str) else Footer(path, size, rows, schema)


class Catalog:
    """Datasets and tables of every project under ``warehouse_dir``; one lock for metadata changes."""

    def __init__(
        self, warehouse_dir: str | os.PathLike[str], dedup_window_s: float = 60.0, dedup_max_ids: int = 200_000
    ):
        self.warehouse_dir = Path(warehouse_dir)
        self.root = self.warehouse_dir / ROOT
        self.lock = threading.Lock()
        self.dedup_window_s, self.dedup_max_ids = dedup_window_s, dedup_max_ids
        self._dedup: dict[tuple[str, str, str], _Dedup] = {}
        self._started = _now_ms()  # the creation time the workshop's resources report

    # -- paths
    def _dataset_dir(self, project: str, dataset: str) -> Path:
        return self.root / check_project(project) / check_dataset(dataset)

    def _table_dir(self, project: str, dataset: str, table: str) -> Path:
        return self._dataset_dir(project, dataset) / "tables" / check_table(table)

    # -- datasets
    def create_dataset(self, project: str, body: Mapping[str, Any]) -> dict[str, Any]:
        ref = body.get("datasetReference") or {}
        dataset = ref.get("datasetId")
        if not isinstance(dataset, str):
            raise errors.invalid("Required parameter is missing: datasetReference.datasetId", "datasetReference")
        if ref.get("projectId") not in (None, project):
            raise errors.invalid("The project in the dataset reference differs from the request's project.")
        folder = self._dataset_dir(project, dataset)
        with self.lock:
            if (folder / "dataset.json").exists() or dataset == workshop.DATASET:
                raise errors.duplicate(f"Dataset {project}:{dataset}")
            now = _now_ms()
            resource = {
                "kind": "bigquery#dataset",
                "id": f"{project}:{dataset}",
                "datasetReference": {"projectId": project, "datasetId": dataset},
                "location": body.get("location") or "US",
                "creationTime": now,
                "lastModifiedTime": now,
                "etag": now,
            }
            for key in ("description", "friendlyName", "labels", "defaultTableExpirationMs"):
                if key in body:
                    resource[key] = body[key]
            write_json(folder / "dataset.json", resource)
        return resource

    def get_dataset(self, project: str, dataset: str) -> dict[str, Any]:
        resource = _read_json(self._dataset_dir(project, dataset) / "dataset.json")
        if resource is None and dataset == workshop.DATASET:
            return workshop.dataset_resource(project, self._started)
        if resource is None:
            raise errors.not_found(f"Dataset {project}:{dataset}")
        return resource

    def update_dataset(self, project: str, dataset: str, body: Mapping[str, Any], replace: bool) -> dict[str, Any]:
        with self.lock:
            resource = self.get_dataset(project, dataset)
            for key in ("description", "friendlyName", "labels", "defaultTableExpirationMs"):
                if key in body:
                    resource[key] = body[key]
                elif replace:
                    resource.pop(key, None)
            resource["lastModifiedTime"] = resource["etag"] = _now_ms()
            write_json(self._dataset_dir(project, dataset) / "dataset.json", resource)
        return resource

    def list_datasets(self, project: str) -> list[dict[str, Any]]:
        folder = self.root / check_project(project)
        out = []
        for path in sorted(folder.glob("*/dataset.json")):
            resource = _read_json(path)
            if resource is not None:
                out.append(resource)
        if not any(r["datasetReference"]["datasetId"] == workshop.DATASET for r in out):
            out.append(workshop.dataset_resource(project, self._started))
            out.sort(key=lambda r: str(r["datasetReference"]["datasetId"]))
        return out

    def delete_dataset(self, project: str, dataset: str, delete_contents: bool) -> None:
        if dataset == workshop.DATASET:
            raise errors.invalid(f"Dataset {project}:{dataset} serves the stack's warehouse and cannot be deleted.")
        with self.lock:
            self.get_dataset(project, dataset)
            folder = self._dataset_dir(project, dataset)
            if not delete_contents and any((folder / "tables").glob("*/table.json")):
                raise errors.BigQueryError(400, "resourceInUse", f"Dataset {project}:{dataset} is still in use")
            # rename first (atomic: the dataset is gone), then remove the files
            grave = folder.with_name(f".deleted-{dataset}-{time.time_ns()}")
            os.replace(folder, grave)
            shutil.rmtree(grave, ignore_errors=True)
            for key in [k for k in self._dedup if k[:2] == (project, dataset)]:
                del self._dedup[key]

    # -- tables
    def create_table(self, project: str, dataset: str, body: Mapping[str, Any]) -> dict[str, Any]:
        ref = body.get("tableReference") or {}
        table = ref.get("tableId")
        if not isinstance(table, str):
            raise errors.invalid("Required parameter is missing: tableReference.tableId", "tableReference")
        fields = parse_fields((body.get("schema") or {}).get("fields"))
        partitioning = self._partitioning(body.get("timePartitioning"), fields)
        if "materializedView" in body or "externalDataConfiguration" in body:
            raise errors.invalid("Materialized views and external tables are not supported by hyp bigquery yet.")
        view = body.get("view")
        if view is not None and (not isinstance(view, Mapping) or not isinstance(view.get("query"), str)):
            raise errors.invalid("A view needs view.query.", "view")
        if view is not None and view.get("useLegacySql") is True:
            raise errors.invalid("Legacy SQL views are not supported by hyp bigquery.", "view")
        folder = self._table_dir(project, dataset, table)
        with self.lock:
            dataset_resource = self.get_dataset(project, dataset)
            if (folder / "table.json").exists() or workshop.is_builtin(dataset, table):
                raise errors.duplicate(f"Table {project}:{dataset}.{table}")
            now = _now_ms()
            resource: dict[str, Any] = {
                "kind": "bigquery#table",
                "id": f"{project}:{dataset}.{table}",
                "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
                "schema": {"fields": [f.to_api() for f in fields]},
                "type": "TABLE",
                "location": dataset_resource.get("location", "US"),
                "creationTime": now,
                "lastModifiedTime": now,
                "etag": now,
            }
            if partitioning is not None:
                resource["timePartitioning"] = partitioning
            if view is not None:
                resource |= {"type": "VIEW", "view": {"query": view["query"], "useLegacySql": False}}
            for key in ("description", "friendlyName", "labels", "expirationTime", "clustering"):
                if key in body:
                    resource[key] = body[key]
            write_json(folder / "table.json", resource)
        return self._with_stats(resource, folder)

    @staticmethod
    def _partitioning(raw: Any, fields: tuple[Field, ...]) -> dict[str, Any] | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise errors.invalid("Invalid timePartitioning.", "timePartitioning")
        kind = raw.get("type", "DAY")
        if kind not in PARTITION_TYPES:
            raise errors.invalid(f"timePartitioning type {kind} is not supported by hyp bigquery (only DAY).")
        column = raw.get("field")
        if column is not None:
            match = [f for f in fields if f.name.lower() == str(column).lower()]
            if not match or match[0].type not in ("TIMESTAMP", "DATE", "DATETIME") or match[0].mode == "REPEATED":
                raise errors.invalid(
                    f"The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME. "
                    f"The type found is: {match[0].type if match else 'missing'}.",
                    "timePartitioning",
                )
        return dict(raw) | {"type": kind}

    def _load_table(self, project: str, dataset: str, table: str) -> tuple[dict[str, Any], Path]:
        if workshop.is_builtin(dataset, table):  # the warehouse's own folder
            check_project(project)
            return workshop.table_resource(project, table, self._started), self.warehouse_dir / table
        folder = self._table_dir(project, dataset, table)
        resource = _read_json(folder / "table.json")
        if resource is None:
            self.get_dataset(project, dataset)  # a missing dataset is reported as such
            raise errors.not_found(f"Table {project}:{dataset}.{table}")
        return resource, folder

    def get_table(self, project: str, dataset: str, table: str) -> dict[str, Any]:
        resource, folder = self._load_table(project, dataset, table)
        return self._with_stats(resource, folder)

    def update_table(
        self, project: str, dataset: str, table: str, body: Mapping[str, Any], replace: bool
    ) -> dict[str, Any]:
        self._refuse_builtin(project, dataset, table, "altered")
        with self.lock:
            resource, folder = self._load_table(project, dataset, table)
            if "schema" in body:
                old = parse_fields(resource["schema"].get("fields"))
                new = parse_fields((body.get("schema") or {}).get("fields"))
                _check_schema_change(old, new)
                resource["schema"] = {"fields": [f.to_api() for f in new]}
            for key in ("description", "friendlyName", "labels", "expirationTime"):
                if key in body:
                    resource[key] = body[key]
                elif replace:
                    resource.pop(key, None)
            resource["lastModifiedTime"] = resource["etag"] = _now_ms()
            write_json(folder / "table.json", resource)
        return self._with_stats(resource, folder)

    def list_tables(self, project: str, dataset: str) -> list[dict[str, Any]]:
        self.get_dataset(project, dataset)
        out = []
        for path in sorted((self._dataset_dir(project, dataset) / "tables").glob("*/table.json")):
            resource = _read_json(path)
            if resource is not None:
                out.append(resource)
        if dataset == workshop.DATASET:
            out += [workshop.table_resource(project, name, self._started) for name in workshop.TABLE_NAMES]
            out.sort(key=lambda r: str(r["tableReference"]["tableId"]))
        return out

    def _refuse_builtin(self, project: str, dataset: str, table: str, what: str) -> None:
        if workshop.is_builtin(dataset, table):
            raise errors.invalid(
                f"Table {project}:{dataset}.{table} is the stack's warehouse table and cannot be {what} "
                "through the API (rows may be inserted and queried)."
            )

    def delete_table(self, project: str, dataset: str, table: str) -> None:
        self._refuse_builtin(project, dataset, table, "deleted")
        with self.lock:
            _, folder = self._load_table(project, dataset, table)
            grave = folder.with_name(f".deleted-{time.time_ns()}")
            os.replace(folder, grave)
            shutil.rmtree(grave, ignore_errors=True)
            self._dedup.pop((project, dataset, table), None)

    def fields(self, project: str, dataset: str, table: str) -> tuple[Field, ...]:
        resource, _ = self._load_table(project, dataset, table)
        return parse_fields(resource["schema"].get("fields"))

    def files(self, project: str, dataset: str, table: str) -> list[Path]:
        """The table's live Parquet files (whole, not replaced by a merged file)."""
        resource, folder = self._load_table(project, dataset, table)
        return live_files(self.warehouse_dir, str(_data(resource, folder).relative_to(self.warehouse_dir)))

    def read(self, project: str, dataset: str, table: str) -> tuple[tuple[Field, ...], pa.Table]:
        """The table's schema and rows (columns added later read as nulls in older files)."""
        import pyarrow.dataset as pds

        resource, _ = self._load_table(project, dataset, table)
        if resource.get("type") == "VIEW":
            raise errors.invalid(f"Cannot list a table of type VIEW: {project}:{dataset}.{table}")
        fields = self.fields(project, dataset, table)
        schema = arrow_schema(fields)
        for _ in range(3):  # a file compaction deleted between listing and reading: list again
            paths = [str(p) for p in self.files(project, dataset, table)]
            try:
                return fields, pds.dataset(paths, schema=schema, format="parquet").to_table()
            except FileNotFoundError:
                continue
        raise errors.BigQueryError(500, "backendError", "The table's files changed while being read; retry.")

    def read_page(
        self, project: str, dataset: str, table: str, start: int, size: int, columns: Iterable[str] | None = None
    ) -> tuple[tuple[Field, ...], int, pa.Table]:
        """tabledata.list's page: the table's schema, its row count and rows ``start`` to ``start + size`` in the
        order of its files, with only ``columns`` (None: all). Reads only the files, and in them only the row
        groups, that hold the page: the footers' row counts (cached) place it."""
        resource, _ = self._load_table(project, dataset, table)
        if resource.get("type") == "VIEW":
            raise errors.invalid(f"Cannot list a table of type VIEW: {project}:{dataset}.{table}")
        fields = parse_fields(resource["schema"].get("fields"))
        schema = arrow_schema(fields)
        if columns is not None:
            wanted = {c.lower() for c in columns}
            schema = pa.schema([f for f in schema if f.name.lower() in wanted])
        for _ in range(3):  # a file compaction deleted between listing and reading: list again
            _, footers = self.resource_files(project, dataset, table)
            total = sum(f.rows for f in footers)
            try:
                pieces, offset = [], 0
                for found in footers:
                    lo, hi = max(start - offset, 0), min(start + size - offset, found.rows)
                    offset += found.rows
                    if lo < hi:
                        pieces.append(_rows(found.path, lo, hi, schema))
                    if offset >= start + size:
                        break
            except FileNotFoundError:
                continue
            return fields, total, pa.concat_tables(pieces) if pieces else schema.empty_table()
        raise errors.BigQueryError(500, "backendError", "The table's files changed while being read; retry.")

    def resource_files(self, project: str, dataset: str, table: str) -> tuple[dict[str, Any], list[Footer]]:
        """A table's resource (without row counts) and the footers of its live files (none for a view),
        from one look at the catalog: what a query binds."""
        resource, folder = self._load_table(project, dataset, table)
        if resource.get("type") == "VIEW":
            return resource, []
        return resource, live.live_footers(
            self.warehouse_dir, str(_data(resource, folder).relative_to(self.warehouse_dir))
        )

    def _with_stats(self, resource: dict[str, Any], folder: Path) -> dict[str, Any]:
        found = live.live_footers(self.warehouse_dir, str(_data(resource, folder).relative_to(self.warehouse_dir)))
        rows, size = sum(f.rows for f in found), sum(f.size for f in found)
        return resource | {"numRows": str(rows), "numBytes": str(size)}

    # -- rows
    def insert_all(
        self,
        project: str,
        dataset: str,
        table: str,
        rows: list[Any],
        *,
        skip_invalid: bool,
        ignore_unknown: bool,
    ) -> InsertResult:
        """tabledata.insertAll: convert every row, then write the valid ones (all or nothing unless
        ``skip_invalid``), as one file per partition; rows whose insertId was seen are dropped."""
        resource, folder = self._load_table(project, dataset, table)
        fields = parse_fields(resource["schema"].get("fields"))
        root = row_type(fields)
        timed = (resource.get("timePartitioning") or {}).get("field") if folder.parent == self.warehouse_dir else None
        converted: list[dict[str, Any] | None] = []
        result = InsertResult()
        for index, entry in enumerate(rows):
            if not isinstance(entry, Mapping) or "json" not in entry:
                error = RowError("", "Each row needs a json object.")
            else:
                try:
                    row = convert_row(entry["json"], root, ignore_unknown)
                    if timed and row.get(timed) is None:  # the warehouse files rows by their event day
                        raise RowError(timed, f"{timed} is required in {dataset}.{table} (hyp-local files rows by it).")
                    converted.append(row)
                    continue
                except RowError as exc:
                    error = exc
            converted.append(None)
            result.errors.append(
                {
                    "index": index,
                    "errors": [
                        {"reason": "invalid", "location": error.location, "debugInfo": "", "message": error.message}
                    ],
                }
            )
        if result.errors and not skip_invalid:
            bad = {e["index"] for e in result.errors}
            stopped = {"reason": "stopped", "location": "", "debugInfo": "", "message": ""}
            result.errors += [{"index": i, "errors": [stopped]} for i in range(len(rows)) if i not in bad]
            result.errors.sort(key=lambda e: e["index"])
            return result
        ids = [entry.get("insertId") if isinstance(entry, Mapping) else None for entry in rows]
        ids = [str(i) if i not in (None, "") else None for i in ids]
        key = (project, dataset, table)
        with self.lock:
            resource, folder = self._load_table(project, dataset, table)  # a truncate may have moved the data
            dedup = self._dedup.get(key)
            if dedup is None:  # the first insert since the start: the window as the files on disk have it
                dedup = self._dedup[key] = _Dedup(self.dedup_window_s, self.dedup_max_ids)
                dedup.load(_data(resource, folder))
            fresh = dedup.fresh(ids)
            picked = [(r, i) for r, i, ok in zip(converted, ids, fresh, strict=True) if r is not None and ok]
            keep = [r for r, _ in picked]
            if keep:
                self._write(resource, fields, folder, keep, [i for _, i in picked])
            dedup.record(i for i, r in zip(ids, converted, strict=True) if i is not None and r is not None)
        result.inserted = len(keep)
        return result

    def append_converted(
        self,
        project: str,
        dataset: str,
        table: str,
        rows: list[dict[str, Any]],
        truncate: bool = False,
        schema: tuple[Field, ...] | None = None,
    ) -> None:
        """Append rows already converted for the table's schema (a load job's): one commit per partition.

        ``truncate`` (WRITE_TRUNCATE) writes them as a new generation of the table's data instead: its
        files go to a fresh ``data-<generation>`` folder, table.json then names it (the commit, atomic),
        and the old generation's files are removed; a crash before the commit leaves the old rows. ``schema``
        replaces the table's schema in the same commit."""
        if truncate:
            self._refuse_builtin(project, dataset, table, "truncated")
        with self.lock:
            resource, folder = self._load_table(project, dataset, table)
            fields = parse_fields(resource["schema"].get("fields"))
            if not truncate:
                if rows:
                    self._write(resource, fields, folder, rows)
                return
            old = _data(resource, folder)
            resource = resource | {"generation": uuid.uuid4().hex[:16]}
            if schema is not None:  # a truncating write replaces the schema too
                fields = schema
                resource["schema"] = {"fields": [f.to_api() for f in schema]}
            if rows:
                self._write(resource, fields, folder, rows)
            resource["lastModifiedTime"] = resource["etag"] = _now_ms()
            write_json(folder / "table.json", {k: v for k, v in resource.items() if k not in ("numRows", "numBytes")})
            current = _data(resource, folder)
            for stale in [*folder.glob("date=*"), *folder.glob("data-*")] if old == folder else [old]:
                if stale != current:
                    shutil.rmtree(stale, ignore_errors=True)

    def _write(
        self,
        resource: Mapping[str, Any],
        fields: tuple[Field, ...],
        folder: Path,
        rows: list[dict[str, Any]],
        insert_ids: list[str | None] | None = None,
    ) -> None:
        """Commit ``rows``, one file per partition; each file keeps the insertIds of its rows (the window of
        de-duplication, on disk: committed with the rows)."""
        if folder.parent == self.warehouse_dir:  # a workshop table: the warehouse's writer, its folder
            try:
                append(self.warehouse_dir, folder.name, workshop.to_warehouse(folder.name, rows), insert_ids)
            except WarehouseError as exc:
                raise errors.invalid(f"Rows do not match the table's schema: {exc}") from None
            return
        folder = _data(resource, folder)
        try:
            data = pa.Table.from_pylist(rows, schema=arrow_schema(fields))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise errors.invalid(f"Rows do not match the table's schema: {exc}") from None
        ids = pa.array(insert_ids or [None] * len(rows), pa.string())
        partitioning = resource.get("timePartitioning")
        if partitioning is None:
            write_atomic(data, folder / UNPARTITIONED, ids.drop_null().to_pylist())
            return
        column = partitioning.get("field")
        if column is None:  # ingestion-time partitioning: today's date (UTC)
            write_atomic(data, folder / f"date={datetime.now(UTC):%Y-%m-%d}", ids.drop_null().to_pylist())
            return
        name = next(f.name for f in fields if f.name.lower() == str(column).lower())
        values = data.column(name)
        if pa.types.is_date(values.type):
            days = pc.strftime(pc.cast(values, pa.timestamp("s")), format="%Y-%m-%d")
        else:
            days = pc.strftime(values, format="%Y-%m-%d")
        for day in pc.unique(days).to_pylist():
            mask = pc.is_null(days) if day is None else pc.fill_null(pc.equal(days, day), False)
            part = f"date={day}" if day is not None else NULL_PARTITION
            write_atomic(data.filter(mask), folder / part, ids.filter(mask).drop_null().to_pylist())


def _rows(path: Path, lo: int, hi: int, schema: pa.Schema) -> pa.Table:
    """Rows ``lo`` to ``hi`` of one file as ``schema`` (columns it lacks as nulls), reading only the row groups
    that hold them."""
    import pyarrow.dataset as pds

    fragment = next(pds.dataset(str(path), schema=schema, format="parquet").get_fragments())
    fragment.ensure_complete_metadata()
    groups, first, offset = [], None, 0
    for index, group in enumerate(fragment.row_groups):
        if offset < hi and offset + group.num_rows > lo:
            groups.append(index)
            first = offset if first is None else first
        offset += group.num_rows
    if not groups:
        return schema.empty_table()
    data = fragment.subset(row_group_ids=groups).to_table(schema=schema, columns=schema.names)
    return data.slice(lo - (first or 0), hi - lo)


def _data(resource: Mapping[str, Any], folder: Path) -> Path:
    """The folder of a table's current data generation (the table folder itself until a truncate)."""
    generation = resource.get("generation")
    return folder / f"data-{generation}" if generation else folder


def _check_schema_change(old: tuple[Field, ...], new: tuple[Field, ...]) -> None:
    """tables.patch/update may add NULLABLE or REPEATED columns and relax REQUIRED to NULLABLE; nothing else."""
    by_name = {f.name.lower(): f for f in new}
    for field_ in old:
        changed = by_name.get(field_.name.lower())
        if changed is None:
            raise errors.invalid(f"Provided Schema does not match Table. Field {field_.name} is missing in new schema")
        if changed.type != field_.type:
            raise errors.invalid(
                f"Provided Schema does not match Table. Field {field_.name} has changed type "
                f"from {field_.type} to {changed.type}"
            )
        if changed.mode != field_.mode and not (field_.mode == "REQUIRED" and changed.mode == "NULLABLE"):
            raise errors.invalid(
                f"Provided Schema does not match Table. Field {field_.name} has changed mode "
                f"from {field_.mode} to {changed.mode}"
            )
        if field_.type == "RECORD":
            _check_schema_change(field_.fields, changed.fields)
    names = {f.name.lower() for f in old}
    for added in new:
        if added.name.lower() not in names and added.mode == "REQUIRED":
            raise errors.invalid(f"Provided Schema does not match Table. Cannot add required field {added.name}")
