"""Load jobs from an upload (``load_table_from_file`` / ``_json`` / ``_dataframe``): NDJSON, CSV, Parquet.

The client sends a multipart upload (job resource + data, up to 5 MB) or a resumable one (the job
resource, then the data in PUTs). The rows are converted with insertAll's rules (schema.py); a load
either writes every good row or, past ``maxBadRecords``, fails with nothing written.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from services.bigquery import errors
from services.bigquery.catalog import Catalog
from services.bigquery.schema import Field, RowError, convert_row, parse_fields, row_type

FORMATS = ("NEWLINE_DELIMITED_JSON", "CSV", "PARQUET")


def run_load(catalog: Catalog, project: str, load: Mapping[str, Any], data: bytes) -> dict[str, Any]:
    """Run one load; returns the load statistics. Raises BigQueryError (the job's errorResult)."""
    dest = load.get("destinationTable") or {}
    dproject, dataset, table = dest.get("projectId") or project, dest.get("datasetId"), dest.get("tableId")
    if not dataset or not table:
        raise errors.invalid("Load configuration must specify destinationTable.", "destinationTable")
    fmt = str(load.get("sourceFormat") or "CSV").upper()
    if fmt not in FORMATS:
        raise errors.invalid(f"Source format {fmt} is not supported by hyp bigquery yet.")
    write = str(load.get("writeDisposition") or "WRITE_APPEND").upper()
    records = _records(fmt, data, load)
    try:
        fields = catalog.fields(dproject, dataset, table)
        exists = True
    except errors.BigQueryError as exc:
        if exc.code != 404 or "Table" not in exc.message:
            raise
        exists = False
    if exists:
        given = (load.get("schema") or {}).get("fields")
        if write == "WRITE_TRUNCATE" and given:  # a truncating load with a schema replaces the table's
            fields = parse_fields(given)
        if write == "WRITE_EMPTY" and int(catalog.get_table(dproject, dataset, table)["numRows"]):
            raise errors.duplicate(f"Table {dproject}:{dataset}.{table} is not empty (writeDisposition WRITE_EMPTY)")
    else:
        if str(load.get("createDisposition") or "CREATE_IF_NEEDED").upper() == "CREATE_NEVER":
            raise errors.not_found(f"Table {dproject}:{dataset}.{table}")
        given = (load.get("schema") or {}).get("fields")
        fields = (
            parse_fields(given)
            if given
            else _detect(
                fmt, records, data, str(load.get("fieldDelimiter") or ","), int(load.get("skipLeadingRows") or 0)
            )
        )
        if not fields:
            raise errors.invalid("No schema specified on job or table, and autodetect found no columns.", "schema")
        catalog.create_table(
            dproject,
            dataset,
            {
                "tableReference": {"projectId": dproject, "datasetId": dataset, "tableId": table},
                "schema": {"fields": [f.to_api() for f in fields]},
                **({"timePartitioning": load["timePartitioning"]} if load.get("timePartitioning") else {}),
            },
        )
    if fmt == "CSV":
        records = _csv_rows(records, fields, load)
    root = row_type(fields)
    ignore = bool(load.get("ignoreUnknownValues"))
    good, bad = [], []
    for number, record in enumerate(records, 1):
        try:
            good.append(convert_row(record, root, ignore))
        except RowError as exc:
            bad.append(f"Error while reading data, error message: row {number}: {exc.message}")
    if len(bad) > int(load.get("maxBadRecords") or 0):
        raise errors.invalid(f"{bad[0]} ({len(bad)} bad record(s))")
    truncate = exists and write == "WRITE_TRUNCATE"
    catalog.append_converted(dproject, dataset, table, good, truncate=truncate, schema=fields if truncate else None)
    return {
        "inputFiles": "1",
        "inputFileBytes": str(len(data)),
        "outputRows": str(len(good)),
        "badRecords": str(len(bad)),
    }


def _records(fmt: str, data: bytes, load: Mapping[str, Any]) -> list[Any]:
    if fmt == "NEWLINE_DELIMITED_JSON":
        out = []
        for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise errors.invalid(
                        f"Error while reading data, error message: JSON parsing error in row {number}: {exc}"
                    ) from None
        return out
    if fmt == "CSV":
        delimiter = str(load.get("fieldDelimiter") or ",")
        rows = list(csv.reader(io.StringIO(data.decode("utf-8")), delimiter=delimiter))
        return rows[int(load.get("skipLeadingRows") or 0) :]
    import pyarrow.parquet as pq

    try:
        return pq.read_table(io.BytesIO(data)).to_pylist()
    except Exception as exc:  # pyarrow raises several kinds for a bad file
        raise errors.invalid(f"Error while reading data, error message: not a Parquet file: {exc}") from None


def _csv_rows(rows: list[list[str]], fields: tuple[Field, ...], load: Mapping[str, Any]) -> list[dict[str, Any]]:
    """CSV cells by position; an empty cell is NULL (BigQuery's default null marker)."""
    out: list[dict[str, Any]] = []
    for row in rows:
        if len(row) > len(fields) and not load.get("ignoreUnknownValues"):
            out.append({f"column{i + 1}": v for i, v in enumerate(row)})  # refused as unknown fields
            continue
        out.append({f.name: (v if v != "" else None) for f, v in zip(fields, row, strict=False)})
    return out


def _detect(fmt: str, records: list[Any], data: bytes, delimiter: str, skip: int) -> tuple[Field, ...]:
    """Schema auto-detection: Parquet's own schema; JSON and CSV by the values' kinds."""
    if fmt == "PARQUET":
        import pyarrow.parquet as pq

        from services.bigquery.jobs import result_fields

        return result_fields(pq.read_schema(io.BytesIO(data)))
    if fmt == "CSV":  # column names from the last skipped row (the header), else string_field_N
        every = list(csv.reader(io.StringIO(data.decode("utf-8")), delimiter=delimiter))
        header = every[skip - 1] if 0 < skip <= len(every) else []
        width = max((len(r) for r in records), default=len(header))
        names = [_column(header[i] if i < len(header) else "", i) for i in range(width)]
        return tuple(Field(n, _csv_kind([r[i] for r in records if i < len(r)])) for i, n in enumerate(names))
    kinds: dict[str, Field] = {}
    for record in records:
        if isinstance(record, dict):
            for key, value in record.items():
                if value is not None and key not in kinds:
                    kinds[key] = _json_field(key, value)
    return tuple(kinds.values())


def _column(name: str, index: int) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name.strip())
    return cleaned if cleaned and not cleaned[0].isdigit() else f"string_field_{index}"


def _csv_kind(values: list[str]) -> str:
    values = [v for v in values if v != ""]
    for kind, check in (("INTEGER", int), ("FLOAT", float)):
        try:
            for v in values:
                check(v)
            return kind if values else "STRING"
        except ValueError:
            continue
    if values and all(v.lower() in ("true", "false") for v in values):
        return "BOOLEAN"
    return "STRING"


def _json_field(name: str, value: Any) -> Field:
    if isinstance(value, list):
        inner = next((v for v in value if v is not None), "")
        field = _json_field(name, inner)
        return Field(name, field.type, "REPEATED", field.fields)
    if isinstance(value, dict):
        children = tuple(_json_field(k, v) for k, v in value.items() if v is not None)
        return Field(name, "RECORD", "NULLABLE", children) if children else Field(name, "STRING")
    if isinstance(value, bool):
        return Field(name, "BOOLEAN")
    if isinstance(value, int):
        return Field(name, "INTEGER")
    if isinstance(value, float):
        return Field(name, "FLOAT")
    return Field(name, "STRING")
