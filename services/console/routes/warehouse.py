"""The warehouse through the BigQuery API (`hyp bigquery`, ``BIGQUERY_EMULATOR_HOST``): datasets and tables
with their schemas and row counts (datasets.list, tables.list, tables.get), a preview (tabledata.list),
recent jobs (jobs.list) and the histogram of a numeric column (two jobs.query calls: range, then
buckets; optionally over log10 of the positive values)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.console.deps import HttpDep, SettingsDep
from services.console.settings import ConsoleSettings
from services.console.upstream import ActionError, call, view

router = APIRouter(prefix="/api/warehouse")

IDENT = r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$"  # a BigQuery dataset or table ID (no dots, no quoting needed)
COLUMN = r"^[A-Za-z_][A-Za-z0-9_]{0,299}(\.[A-Za-z_][A-Za-z0-9_]{0,299}){0,9}$"  # a column or a record's field
PREVIEW_ROWS = 20
JOB_KINDS = ("query", "load", "copy", "extract")
Ident = Annotated[str, Field(pattern=IDENT)]


class Histogram(BaseModel):
    dataset: Ident = "ecommerce_sink"
    table: Ident = "cloud_run"
    column: str = Field("ecommerce.purchase.value", pattern=COLUMN)
    bins: int = Field(30, ge=2, le=200)
    log: bool = False


@router.get("/tables")
async def tables(settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    """Every dataset's tables with type, row count, size and schema (tables.get per table)."""
    return await view(_tables(settings, http), {"tables": []})


async def _tables(settings: ConsoleSettings, http: httpx.AsyncClient) -> dict[str, Any]:
    api = settings.bigquery_api
    datasets = await call(http, "BigQuery datasets.list", "GET", api + "/datasets", params={"all": "true"})
    out: list[dict[str, Any]] = []
    for ds in datasets.get("datasets", []):
        dataset = ds["datasetReference"]["datasetId"]
        listed = await call(http, "BigQuery tables.list", "GET", f"{api}/datasets/{dataset}/tables")
        ids = [t["tableReference"]["tableId"] for t in listed.get("tables", [])]
        got = await asyncio.gather(
            *(call(http, "BigQuery tables.get", "GET", f"{api}/datasets/{dataset}/tables/{t}") for t in ids)
        )
        for table in got:
            out.append(
                {
                    "dataset": dataset,
                    "table": table["tableReference"]["tableId"],
                    "type": table.get("type", "TABLE"),
                    "rows": _int(table.get("numRows")),
                    "bytes": _int(table.get("numBytes")),
                    "partitioning": (table.get("timePartitioning") or {}).get("field"),
                    "schema": (table.get("schema") or {}).get("fields", []),
                }
            )
    return {"tables": out}


@router.get("/tables/{dataset}/{table}/preview")
async def preview(
    dataset: str,
    table: str,
    settings: SettingsDep,
    http: HttpDep,
    rows: Annotated[int, Query(ge=1, le=200)] = PREVIEW_ROWS,
) -> dict[str, Any]:
    """The first rows (tabledata.list), nested records and arrays as plain JSON values."""
    base = f"{settings.bigquery_api}/datasets/{_ident(dataset)}/tables/{_ident(table)}"
    meta, data = await asyncio.gather(
        call(http, "BigQuery tables.get", "GET", base),
        call(http, "BigQuery tabledata.list", "GET", base + "/data", params={"maxResults": rows}),
    )
    fields = (meta.get("schema") or {}).get("fields", [])
    return {
        "columns": [f["name"] for f in fields],
        "rows": [[_json_cell(v) for v in decode_row(r, fields).values()] for r in data.get("rows", [])],
        "total_rows": _int(data.get("totalRows")),
    }


@router.get("/jobs")
async def jobs(settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    """The project's recent jobs (jobs.list, newest first): query text, state, bytes, error."""
    return await view(_jobs(settings, http), {"jobs": []})


async def _jobs(settings: ConsoleSettings, http: httpx.AsyncClient) -> dict[str, Any]:
    params = {"projection": "full", "maxResults": 20, "allUsers": "true"}
    try:
        listed = await call(http, "BigQuery jobs.list", "GET", settings.bigquery_api + "/jobs", params=params)
    except ActionError as exc:
        if exc.status not in (404, 405):
            raise
        return {"jobs": [], "unavailable": f"this BigQuery API does not serve jobs.list ({exc.message})"}
    out = []
    for job in listed.get("jobs", []):
        config = job.get("configuration") or {}
        stats = job.get("statistics") or {}
        status = job.get("status") or {}
        out.append(
            {
                "id": (job.get("jobReference") or {}).get("jobId"),
                "type": config.get("jobType") or next((k for k in JOB_KINDS if k in config), None),
                "query": (config.get("query") or {}).get("query"),
                "state": job.get("state") or status.get("state"),
                "created": _int(stats.get("creationTime")),
                "bytes": _int((stats.get("query") or {}).get("totalBytesProcessed")),
                "error": (status.get("errorResult") or {}).get("message"),
            }
        )
    return {"jobs": out}


@router.post("/histogram")
async def histogram(body: Histogram, settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    """Counts of ``column`` in ``bins`` equal-width buckets between its minimum and maximum (of log10 of the
    positive values with ``log``; the others are counted apart as ``skipped``)."""
    table = f"`{settings.project}.{body.dataset}.{body.table}`"
    x = f"CAST({body.column} AS FLOAT64)"
    scaled = f"LOG10({x})" if body.log else x
    keep = f"{x} > 0" if body.log else f"{x} IS NOT NULL"
    summary = await query_rows(
        settings,
        http,
        f"SELECT MIN(IF({keep}, {scaled}, NULL)) AS lo, MAX(IF({keep}, {scaled}, NULL)) AS hi,"
        f" COUNTIF({keep}) AS n, COUNTIF(NOT ({keep})) AS skipped"
        f" FROM {table} WHERE {x} IS NOT NULL AND {x} = {x}",  # NaN is not a value to count
    )
    lo, hi, n, skipped = summary[0] if summary else (None, None, 0, 0)
    n, skipped = int(n or 0), int(skipped or 0)
    if not n or lo is None or hi is None:
        return {"edges": [], "counts": [], "n": 0, "skipped": skipped, "log": body.log, "column": body.column}
    lo, hi = float(lo), float(hi)
    width = (hi - lo) / body.bins if hi > lo else 1.0
    bucket = f"LEAST(CAST(FLOOR(({scaled} - ({lo!r})) / {width!r}) AS INT64), {body.bins - 1})"
    rows = await query_rows(
        settings, http, f"SELECT {bucket} AS b, COUNT(*) AS c FROM {table} WHERE {keep} AND {x} = {x} GROUP BY b"
    )
    counts = [0] * body.bins
    for b, c in rows:
        counts[min(max(int(b), 0), body.bins - 1)] += int(c)
    edges = [lo + i * width for i in range(body.bins + 1)]
    if body.log:
        edges = [10**e for e in edges]
    return {"edges": edges, "counts": counts, "n": n, "skipped": skipped, "log": body.log, "column": body.column}


async def query_rows(settings: Any, http: Any, sql: str) -> list[list[Any]]:
    """A query's rows (jobs.query, standard SQL) as lists of the API's plain cell values."""
    answer = await call(
        http,
        "BigQuery jobs.query",
        "POST",
        settings.bigquery_api + "/queries",
        json={"query": sql, "useLegacySql": False, "maxResults": 1000, "timeoutMs": 20_000},
    )
    if not answer.get("jobComplete", True):
        raise ActionError(504, "BigQuery jobs.query: not complete within 20 s")
    return [[cell.get("v") for cell in row.get("f", [])] for row in answer.get("rows", [])]


def decode_row(row: dict[str, Any], fields: list[dict[str, Any]]) -> dict[str, Any]:
    """One row of the API's ``{"f": [{"v": ...}]}`` shape as ``{name: value}``; records and arrays nested."""
    return {f["name"]: _decode(cell.get("v"), f) for f, cell in zip(fields, row.get("f", []), strict=False)}


def _decode(value: Any, field: dict[str, Any]) -> Any:
    if value is None:
        return None
    if field.get("mode") == "REPEATED":
        return [_decode(item.get("v"), {**field, "mode": "NULLABLE"}) for item in value]
    if field.get("type") in ("RECORD", "STRUCT"):
        return decode_row(value, field.get("fields", []))
    if field.get("type") == "TIMESTAMP":  # the API sends seconds since the epoch, as text
        from datetime import UTC, datetime

        try:
            return datetime.fromtimestamp(float(value), UTC).isoformat(sep=" ")
        except (TypeError, ValueError, OverflowError):
            return value
    return value


def _json_cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        import json

        return json.dumps(value)
    return value


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ident(value: str) -> str:
    import re

    if not re.fullmatch(IDENT, value):
        raise ActionError(400, f"{value!r} is not a BigQuery dataset or table ID (letters, digits, underscores)")
    return value
