"""Extract jobs (``extract_table``) to a local destination instead of Cloud Storage.

A destination URI is ``file:///abs/path`` or a path; a relative path is taken inside the export folder,
and every destination must lie inside it (``HYP_BIGQUERY_EXPORT_DIR``, by default ``<warehouse>/_exports``:
a request over HTTP writes nowhere else). ``gs://`` and any other scheme get BigQuery's ``invalid``. A ``*``
in the name is replaced by a 12-digit file number, as BigQuery does (one file here). Formats: CSV
(``printHeader``, ``fieldDelimiter``; a nested schema is refused as BigQuery refuses it), newline-delimited
JSON and Parquet, with ``GZIP`` (or Parquet's ``SNAPPY``/``ZSTD``) compression. Each file is written under
a hidden name and renamed into place, so a destination holds a whole file or none.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from services.bigquery import errors
from services.bigquery.catalog import Catalog
from services.bigquery.schema import Field

EXPORTS = "_exports"  # the default export folder, inside the warehouse
FORMATS = ("CSV", "NEWLINE_DELIMITED_JSON", "PARQUET")
PARQUET_COMPRESSION = {"NONE": "none", "SNAPPY": "snappy", "GZIP": "gzip", "ZSTD": "zstd"}
SHARD = "000000000000"


def export_root(catalog: Catalog, export_dir: str | os.PathLike[str] | None) -> Path:
    return Path(export_dir) if export_dir is not None else catalog.warehouse_dir / EXPORTS


def run_extract(
    catalog: Catalog, project: str, config: Mapping[str, Any], export_dir: str | os.PathLike[str] | None
) -> dict[str, Any]:
    """Write the source table's rows to each destination; the job's ``extract`` statistics."""
    source = config.get("sourceTable")
    if not isinstance(source, Mapping) or not source.get("datasetId") or not source.get("tableId"):
        raise errors.invalid("An extract job needs a sourceTable (extracting models is not supported).")
    uris = list(config.get("destinationUris") or []) + (
        [config["destinationUri"]] if config.get("destinationUri") else []
    )
    if not uris:
        raise errors.invalid("An extract job needs destinationUris.")
    kind = str(config.get("destinationFormat") or "CSV").upper()
    if kind not in FORMATS:
        raise errors.invalid(
            f"Extract format {kind} is not supported by hyp bigquery (CSV, NEWLINE_DELIMITED_JSON, PARQUET)."
        )
    compression = str(config.get("compression") or "NONE").upper()
    allowed = PARQUET_COMPRESSION if kind == "PARQUET" else {"NONE": "", "GZIP": "gzip"}
    if compression not in allowed:
        raise errors.invalid(f"Compression {compression} is not supported for {kind} exports.")
    root = export_root(catalog, export_dir).resolve()
    targets = [_destination(str(uri), root) for uri in uris]  # all checked before anything is written
    fields, rows = catalog.read(str(source.get("projectId") or project), source["datasetId"], source["tableId"])
    if kind == "CSV":
        nested = next((f for f in fields if f.type == "RECORD" or f.mode == "REPEATED"), None)
        if nested is not None:
            raise errors.invalid(f"Operation cannot be performed on a nested schema. Field: {nested.name}")
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            if kind == "PARQUET":
                pq.write_table(rows, tmp, compression=allowed[compression])
            else:
                data = _csv(rows, fields, config) if kind == "CSV" else _ndjson(rows)
                tmp.write_bytes(gzip.compress(data) if compression == "GZIP" else data)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    size = sum(
        f.stat().st_size
        for f in catalog.files(str(source.get("projectId") or project), source["datasetId"], source["tableId"])
        if f.exists()
    )
    return {"destinationUriFileCounts": ["1"] * len(targets), "inputBytes": str(size)}


def _destination(uri: str, root: Path) -> Path:
    """The local file of one destination URI, inside ``root``; anything else: BigQuery's ``invalid``."""
    path = uri.removeprefix("file://") if uri.startswith("file://") else uri
    if "://" in path or path.startswith("gs:") or not path.strip():
        raise errors.invalid(
            f"Invalid extract destination URI '{uri}'. Must be a local path or a file:// URI "
            "(hyp bigquery does not write to Cloud Storage).",
            "destinationUris",
        )
    if path.count("*") > 1:
        raise errors.invalid(f"Invalid extract destination URI '{uri}'. Only one wildcard is allowed.")
    target = (root / path.replace("*", SHARD)).resolve()
    if target != root and root not in target.parents:
        raise errors.invalid(
            f"Invalid extract destination URI '{uri}'. hyp bigquery writes exports only under {root} "
            "(HYP_BIGQUERY_EXPORT_DIR).",
            "destinationUris",
        )
    if target.is_dir():
        raise errors.invalid(f"Invalid extract destination URI '{uri}': it names a folder.")
    return target


def _csv(rows: pa.Table, fields: tuple[Field, ...], config: Mapping[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=str(config.get("fieldDelimiter") or ","), lineterminator="\n")
    if config.get("printHeader", True) is not False:
        writer.writerow([f.name for f in fields])
    for row in rows.to_pylist():
        writer.writerow(["" if row[f.name] is None else _text(row[f.name]) for f in fields])
    return out.getvalue().encode()


def _ndjson(rows: pa.Table) -> bytes:
    lines = [json.dumps({k: _plain(v) for k, v in row.items() if v is not None}) for row in rows.to_pylist()]
    return ("\n".join(lines) + ("\n" if lines else "")).encode()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _timestamp(value)
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, date | time | Decimal):
        return str(value)
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    return value


def _timestamp(value: datetime) -> str:
    """BigQuery's export text of a TIMESTAMP (``2026-11-01 12:00:00 UTC``) or a DATETIME (no zone)."""
    if value.tzinfo is None:
        return value.isoformat(sep=" ")
    from datetime import UTC

    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ") + " UTC"
