"""The REST surface (``/bigquery/v2/...``) Google's client calls: datasets, tables, tabledata.insertAll.

Handlers read the body themselves (bounded by ``max_request_bytes``), run the catalog's blocking work
in the thread pool and answer BigQuery's resources as JSON; errors are errors.BigQueryError.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from services.bigquery.catalog import Catalog
from services.bigquery.errors import BigQueryError, invalid
from services.bigquery.jobs import Job, Jobs
from services.bigquery.paging import list_page
from services.bigquery.read_api import arrow_page
from services.bigquery.rows import rows_json
from services.bigquery.settings import BigQuerySettings

PREFIX = "/bigquery/v2/projects/{project}"
MAX_UPLOADS = 32  # unfinished resumable uploads kept at once
ROWS_PAGE = 100_000  # rows per tabledata.list page when the client sets no maxResults
QUERY_RESULTS_WAIT_MS = 10_000  # getQueryResults' timeoutMs when the client sends none (BigQuery's documented 10 s)
QUERY_RESULTS_MAX_WAIT_MS = 60_000  # the longest one request is held open for a running job (local choice)


def _json(data: Any, status: int = 200, rows: bytes | None = None) -> Response:
    """``data`` as JSON; ``rows``, the JSON text of a page of rows (rows.rows_json), goes in as its ``rows``."""
    body = orjson.dumps(data)
    if rows is not None:
        body = body[:-1] + (b',"rows":' if len(body) > 2 else b'"rows":') + rows + b"}"
    return Response(body, status_code=status, media_type="application/json")


def _catalog(request: Request) -> Catalog:
    return request.app.state.catalog  # type: ignore[no-any-return]


async def _body(request: Request) -> dict[str, Any]:
    settings: BigQuerySettings = request.app.state.settings
    limit = settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise invalid(f"Request payload size exceeds the limit: {limit} bytes.")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise invalid(f"Request payload size exceeds the limit: {limit} bytes.")
    if not raw:
        return {}
    try:
        body = orjson.loads(bytes(raw))
    except orjson.JSONDecodeError as exc:
        raise BigQueryError(400, "parseError", f"Parse error: {exc}") from None
    if not isinstance(body, dict):
        raise BigQueryError(400, "parseError", "The request body must be a JSON object.")
    return body


def _page(request: Request, items: list[dict[str, Any]], key: str, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind, "etag": str(len(items)), **list_page(request, items, key)}
    if key == "tables":
        out["totalItems"] = len(items)
    return out


def _dataset_entry(resource: dict[str, Any]) -> dict[str, Any]:
    keys = ("kind", "id", "datasetReference", "location", "labels", "friendlyName")
    return {k: resource[k] for k in keys if k in resource}


def _table_entry(resource: dict[str, Any]) -> dict[str, Any]:
    keys = ("kind", "id", "tableReference", "type", "creationTime", "timePartitioning", "labels", "friendlyName")
    return {k: resource[k] for k in keys if k in resource}


def router() -> APIRouter:
    api = APIRouter()

    # -- datasets
    @api.post(PREFIX + "/datasets")
    async def create_dataset(project: str, request: Request) -> Response:
        body = await _body(request)
        return _json(await run_in_threadpool(_catalog(request).create_dataset, project, body))

    @api.get(PREFIX + "/datasets")
    async def list_datasets(project: str, request: Request) -> Response:
        items = await run_in_threadpool(_catalog(request).list_datasets, project)
        return _json(_page(request, [_dataset_entry(d) for d in items], "datasets", "bigquery#datasetList"))

    @api.get(PREFIX + "/datasets/{dataset}")
    async def get_dataset(project: str, dataset: str, request: Request) -> Response:
        return _json(await run_in_threadpool(_catalog(request).get_dataset, project, dataset))

    @api.patch(PREFIX + "/datasets/{dataset}")
    async def patch_dataset(project: str, dataset: str, request: Request) -> Response:
        body = await _body(request)
        return _json(await run_in_threadpool(_catalog(request).update_dataset, project, dataset, body, False))

    @api.put(PREFIX + "/datasets/{dataset}")
    async def update_dataset(project: str, dataset: str, request: Request) -> Response:
        body = await _body(request)
        return _json(await run_in_threadpool(_catalog(request).update_dataset, project, dataset, body, True))

    @api.delete(PREFIX + "/datasets/{dataset}")
    async def delete_dataset(project: str, dataset: str, request: Request) -> Response:
        contents = request.query_params.get("deleteContents", "false").lower() == "true"
        await run_in_threadpool(_catalog(request).delete_dataset, project, dataset, contents)
        return Response(status_code=204)

    # -- tables
    @api.post(PREFIX + "/datasets/{dataset}/tables")
    async def create_table(project: str, dataset: str, request: Request) -> Response:
        body = await _body(request)
        view = body.get("view")
        if isinstance(view, dict) and isinstance(view.get("query"), str) and view.get("useLegacySql") is not True:
            fields = await run_in_threadpool(_jobs(request).view_schema, project, view["query"])
            body["schema"] = {"fields": [f.to_api() for f in fields]}
        return _json(await run_in_threadpool(_catalog(request).create_table, project, dataset, body))

    @api.get(PREFIX + "/datasets/{dataset}/tables")
    async def list_tables(project: str, dataset: str, request: Request) -> Response:
        items = await run_in_threadpool(_catalog(request).list_tables, project, dataset)
        return _json(_page(request, [_table_entry(t) for t in items], "tables", "bigquery#tableList"))

    @api.get(PREFIX + "/datasets/{dataset}/tables/{table}")
    async def get_table(project: str, dataset: str, table: str, request: Request) -> Response:
        result = _jobs(request).anonymous(project, dataset, table)  # a query's anonymous result table
        if result is not None and result.data is not None:
            return _json(_anonymous_table(project, dataset, table, result))
        return _json(await run_in_threadpool(_catalog(request).get_table, project, dataset, table))

    @api.patch(PREFIX + "/datasets/{dataset}/tables/{table}")
    async def patch_table(project: str, dataset: str, table: str, request: Request) -> Response:
        body = await _body(request)
        catalog = _catalog(request)
        return _json(await run_in_threadpool(catalog.update_table, project, dataset, table, body, False))

    @api.put(PREFIX + "/datasets/{dataset}/tables/{table}")
    async def update_table(project: str, dataset: str, table: str, request: Request) -> Response:
        body = await _body(request)
        catalog = _catalog(request)
        return _json(await run_in_threadpool(catalog.update_table, project, dataset, table, body, True))

    @api.delete(PREFIX + "/datasets/{dataset}/tables/{table}")
    async def delete_table(project: str, dataset: str, table: str, request: Request) -> Response:
        await run_in_threadpool(_catalog(request).delete_table, project, dataset, table)
        return Response(status_code=204)

    # -- tabledata
    @api.get(PREFIX + "/datasets/{dataset}/tables/{table}/data")
    async def list_rows(project: str, dataset: str, table: str, request: Request) -> Response:
        query = request.query_params
        start, size = _rows_page(query.get("pageToken"), query.get("startIndex"), query.get("maxResults"))
        selected = query.get("selectedFields")
        wanted = [s.strip() for s in selected.split(",")] if selected else None
        result = _jobs(request).anonymous(project, dataset, table)  # a query's anonymous result table
        if result is not None and result.data is not None:
            fields, total, page = result.fields, result.data.num_rows, result.data.slice(start, size)
            if wanted is not None:
                page = page.select([f.name for f in fields if f.name.lower() in {w.lower() for w in wanted}])
        else:
            catalog = _catalog(request)
            fields, total, page = await run_in_threadpool(
                catalog.read_page, project, dataset, table, start, size, wanted
            )
        if wanted is not None:
            names = {w.lower() for w in wanted}
            fields = tuple(f for f in fields if f.name.lower() in names)
        int64 = query.get("formatOptions.useInt64Timestamp", "false").lower() == "true"
        out: dict[str, Any] = {"kind": "bigquery#tableDataList", "totalRows": str(total)}
        if page.num_rows and start + page.num_rows < total:
            out["pageToken"] = _token(start + page.num_rows)
        return _json(out, rows=rows_json(page, fields, int64))

    @api.post(PREFIX + "/datasets/{dataset}/tables/{table}/insertAll")
    async def insert_all(project: str, dataset: str, table: str, request: Request) -> Response:
        body = await _body(request)
        rows = body.get("rows") or []
        if not isinstance(rows, list):
            raise invalid("rows must be a list.", "rows")
        settings: BigQuerySettings = request.app.state.settings
        if len(rows) > settings.max_rows_per_request:
            raise invalid(f"too many rows present in the request, limit: {settings.max_rows_per_request}", "rows")
        result = await run_in_threadpool(
            _catalog(request).insert_all,
            project,
            dataset,
            table,
            rows,
            skip_invalid=bool(body.get("skipInvalidRows")),
            ignore_unknown=bool(body.get("ignoreUnknownValues")),
        )
        out: dict[str, Any] = {"kind": "bigquery#tableDataInsertAllResponse"}
        if result.errors:
            out["insertErrors"] = result.errors
        return _json(out)

    # -- jobs
    @api.post(PREFIX + "/queries")
    async def jobs_query(project: str, request: Request) -> Response:
        body = await _body(request)
        arrow = _arrow_format(body)
        size = body.get("maxResults")
        page = int(size) if isinstance(size, int) and size > 0 else ROWS_PAGE
        job = await run_in_threadpool(_jobs(request).query, project, body, page)
        reason = {"jobCreationReason": {"code": job.creation_reason}} if job.creation_reason else {}
        if not job.complete:  # a background job still running after timeoutMs: the client polls getQueryResults
            return _json(_running(job, "bigquery#queryResponse") | reason)
        int64 = bool((body.get("formatOptions") or {}).get("useInt64Timestamp"))
        out, rows = _arrow_results(job, page) if arrow else _results(job, 0, page, int64)
        if job.query_id is not None:  # JOB_CREATION_OPTIONAL answered without a job
            out["location"] = out.pop("jobReference")["location"]
            out["queryId"] = job.query_id
        return _json(out | reason | {"kind": "bigquery#queryResponse"}, rows=rows)

    @api.post(PREFIX + "/jobs")
    async def jobs_insert(project: str, request: Request) -> Response:
        body = await _body(request)
        job = await run_in_threadpool(_jobs(request).insert, project, body)
        return _json(job.resource)

    @api.get(PREFIX + "/jobs")
    async def jobs_list(project: str, request: Request) -> Response:
        jobs = _jobs(request).list_jobs(project, request.query_params.get("stateFilter"))
        return _json(_page(request, jobs, "jobs", "bigquery#jobList"))

    @api.get(PREFIX + "/jobs/{job_id}")
    async def jobs_get(project: str, job_id: str, request: Request) -> Response:
        return _json(_jobs(request).get(project, job_id).resource)

    @api.post(PREFIX + "/jobs/{job_id}/cancel")
    async def jobs_cancel(project: str, job_id: str, request: Request) -> Response:
        job = _jobs(request).get(project, job_id)
        if not job.complete:  # a running or waiting CREATE MODEL stops at its next iteration or epoch
            from services.bigquery.ml import progress as ml_progress

            ml_progress.cancel(project, job_id)
        return _json({"kind": "bigquery#jobCancelResponse", "job": job.resource})

    @api.get(PREFIX + "/queries/{job_id}")
    async def get_query_results(project: str, job_id: str, request: Request) -> Response:
        query = request.query_params
        try:
            timeout_ms = int(query.get("timeoutMs") or QUERY_RESULTS_WAIT_MS)
        except ValueError:
            raise invalid("Invalid timeoutMs.", "timeoutMs") from None
        wait_s = min(max(timeout_ms, 0), QUERY_RESULTS_MAX_WAIT_MS) / 1000
        job = await run_in_threadpool(_jobs(request).results, project, job_id, wait_s)
        if not job.complete:
            return _json(_running(job, "bigquery#getQueryResultsResponse"))
        if job.error is not None:
            raise job.error
        try:
            start = int(query.get("pageToken") or query.get("startIndex") or 0)
            size = int(query.get("maxResults") or ROWS_PAGE)
        except ValueError:
            raise invalid("Invalid pageToken, startIndex or maxResults.") from None
        if start < 0 or size < 0:
            raise invalid("Invalid pageToken, startIndex or maxResults.")
        int64 = query.get("formatOptions.useInt64Timestamp", "false").lower() == "true"
        out, rows = _results(job, start, size, int64)
        return _json(out | {"kind": "bigquery#getQueryResultsResponse"}, rows=rows)

    # -- uploads (load jobs)
    upload = "/upload" + PREFIX + "/jobs"

    @api.post(upload)
    async def upload_start(project: str, request: Request) -> Response:
        kind = request.query_params.get("uploadType")
        raw = await _raw(request)
        if kind == "multipart":
            metadata, data = _multipart(request.headers.get("content-type", ""), raw)
            job = await run_in_threadpool(_jobs(request).load, project, metadata, data)
            return _json(job.resource)
        if kind == "resumable":
            metadata = _object(raw)
            upload_id = uuid.uuid4().hex
            uploads = request.app.state.uploads
            while len(uploads) >= MAX_UPLOADS:  # the oldest unfinished session goes
                uploads.pop(next(iter(uploads)))
            uploads[upload_id] = (project, metadata, bytearray())
            location = f"{str(request.url).split('?')[0]}?uploadType=resumable&upload_id={upload_id}"
            return Response(status_code=200, headers={"Location": location})
        raise invalid(f"uploadType {kind!r} is not supported (multipart or resumable).")

    @api.put(upload)
    async def upload_chunk(project: str, request: Request) -> Response:
        session = request.app.state.uploads.get(request.query_params.get("upload_id", ""))
        if session is None:
            raise BigQueryError(404, "notFound", "Not found: upload session")
        _, metadata, buffer = session
        settings: BigQuerySettings = request.app.state.settings
        try:
            buffer += await _raw(request, limit=settings.max_upload_bytes - len(buffer))
        except BigQueryError:
            del request.app.state.uploads[request.query_params["upload_id"]]
            raise
        total = _total(request.headers.get("content-range", ""))
        if total is None or len(buffer) < total:
            headers = {"Range": f"bytes=0-{len(buffer) - 1}"} if buffer else {}
            return Response(status_code=308, headers=headers)
        del request.app.state.uploads[request.query_params["upload_id"]]
        job = await run_in_threadpool(_jobs(request).load, project, metadata, bytes(buffer))
        return _json(job.resource)

    return api


async def _raw(request: Request, limit: int | None = -1) -> bytes:
    """The body, bounded by max_request_bytes (``limit=-1``) or by ``limit`` (None: unbounded)."""
    settings: BigQuerySettings = request.app.state.settings
    bound = settings.max_request_bytes if limit == -1 else limit
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if bound is not None and len(raw) > bound:
            raise invalid(f"Request payload size exceeds the limit: {bound} bytes.")
    return bytes(raw)


def _object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise BigQueryError(400, "parseError", f"Parse error: {exc}") from None
    if not isinstance(body, dict):
        raise BigQueryError(400, "parseError", "The request body must be a JSON object.")
    return body


def _multipart(content_type: str, raw: bytes) -> tuple[dict[str, Any], bytes]:
    """A multipart/related upload: the job resource (JSON), then the data."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    parts = [p.get_payload(decode=True) for p in message.iter_parts()] if message.is_multipart() else []
    if len(parts) != 2 or not isinstance(parts[0], bytes) or not isinstance(parts[1], bytes):
        raise invalid("A multipart upload needs two parts: the job resource and the data.")
    return _object(parts[0]), parts[1]


def _total(content_range: str) -> int | None:
    """The total size in ``Content-Range: bytes a-b/total`` (None while unknown: ``*``)."""
    _, _, total = content_range.rpartition("/")
    return int(total) if total.isdigit() else None


TOKEN_PREFIX = "row:"  # tabledata.list's page tokens: opaque to clients, the next row's index here


def _token(row: int) -> str:
    return f"{TOKEN_PREFIX}{row}"


def _rows_page(token: str | None, start_index: str | None, max_results: str | None) -> tuple[int, int]:
    """(first row, rows) of a tabledata.list page: from ``pageToken`` (a token this service handed out) or
    ``startIndex`` (zero-based), never both (BigQuery allows one of them), at most ``maxResults`` rows."""
    if token and start_index:
        raise invalid("Only one of pageToken and startIndex may be set.")
    try:
        if token:
            if not token.startswith(TOKEN_PREFIX):
                raise ValueError(token)
            start = int(token.removeprefix(TOKEN_PREFIX))
        else:
            start = int(start_index or 0)
        size = int(max_results) if max_results else ROWS_PAGE
    except ValueError:
        raise invalid("Invalid pageToken, startIndex or maxResults.") from None
    if start < 0 or size < 0:
        raise invalid("Invalid pageToken, startIndex or maxResults.")
    return start, min(size, ROWS_PAGE)


STRUCT_FORMATS = {"QUERY_RESULTS_FORMAT_UNSPECIFIED", "STRUCT_ENCODING"}  # the documented values meaning JSON rows
ARROW_OPTIONS = {  # arrowSerializationOptions served: uncompressed buffers, microsecond timestamps
    "bufferCompression": {"COMPRESSION_UNSPECIFIED"},
    "picosTimestampPrecision": {"TIMESTAMP_PRECISION_UNSPECIFIED", "TIMESTAMP_PRECISION_MICROS"},
}


def _arrow_format(body: dict[str, Any]) -> bool:
    """Whether jobs.query asks for its first page as Arrow (``queryResultsFormat: ARROW``); unset or a JSON-rows
    value answers ``rows``. Serialization options this service does not honour are refused rather than ignored."""
    value = body.get("queryResultsFormat")
    if value is None or value in STRUCT_FORMATS:
        return False
    if value != "ARROW":
        raise invalid(f"Invalid value for queryResultsFormat: {value!r}.", "queryResultsFormat")
    options = body.get("arrowSerializationOptions") or {}
    if not isinstance(options, dict):
        raise invalid("Invalid arrowSerializationOptions: expected an object.", "arrowSerializationOptions")
    for key, value in options.items():
        served = ARROW_OPTIONS.get(key)
        if served is None or value not in served:
            raise invalid(
                f"arrowSerializationOptions.{key} {value!r} is not supported here (served: "
                "bufferCompression COMPRESSION_UNSPECIFIED, picosTimestampPrecision TIMESTAMP_PRECISION_MICROS).",
                f"arrowSerializationOptions.{key}",
            )
    return True


def _arrow_results(job: Job, size: int) -> tuple[dict[str, Any], None]:
    """jobs.query's first page as Arrow: the schema and one record batch (the Read API's serialization), at most
    ``size`` rows; a ``pageToken`` when more remain, which the client reads from the job's ``_default`` stream."""
    out, _ = _results(job, 0, 0, False)  # the fields as the JSON path answers them, without rows
    out.pop("pageToken", None)
    if job.data is None:  # a dry run, DDL or DML
        return out, None
    schema, batch = arrow_page(job.data, job.fields, 0, size)
    rows = min(size, job.data.num_rows)
    out["arrowSchema"] = {"serializedSchema": base64.b64encode(schema).decode("ascii")}
    out["arrowRecordBatch"] = {"serializedRecordBatch": base64.b64encode(batch).decode("ascii")}
    out["pageRowCount"] = str(rows)
    if rows < job.data.num_rows:
        out["pageToken"] = str(rows)
    return out, None


def _running(job: Job, kind: str) -> dict[str, Any]:
    """jobs.query / getQueryResults for a job not done yet: ``jobComplete`` false and no rows (the client waits)."""
    return {"kind": kind, "jobReference": job.resource["jobReference"], "jobComplete": False}


def _anonymous_table(project: str, dataset: str, table: str, job: Job) -> dict[str, Any]:
    """tables.get of a query's anonymous result table: its schema and row count."""
    assert job.data is not None
    return {
        "kind": "bigquery#table",
        "id": f"{project}:{dataset}.{table}",
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
        "type": "TABLE",
        "schema": {"fields": [f.to_api() for f in job.fields]},
        "numRows": str(job.data.num_rows),
        "numBytes": str(job.data.nbytes),
        "creationTime": job.resource["statistics"].get("creationTime", "0"),
    }


def _jobs(request: Request) -> Jobs:
    return request.app.state.jobs  # type: ignore[no-any-return]


def _results(job: Job, start: int, size: int, int64: bool) -> tuple[dict[str, Any], bytes | None]:
    """A page of a done query job, as jobs.query and jobs.getQueryResults answer it: the fields, and the
    page's rows as JSON text (None for a dry run, DDL or DML)."""
    stats = job.resource["statistics"]
    out: dict[str, Any] = {
        "jobReference": job.resource["jobReference"],
        "jobComplete": True,
        "cacheHit": False,
        "totalBytesProcessed": stats.get("totalBytesProcessed", "0"),
        "schema": {"fields": [f.to_api() for f in job.fields]},
    }
    if job.affected is not None:
        out["numDmlAffectedRows"] = str(job.affected)
    if job.data is None:  # a dry run, DDL or DML
        return out, None
    out["totalRows"] = str(job.data.num_rows)
    if start + size < job.data.num_rows:
        out["pageToken"] = str(start + size)
    return out, rows_json(job.data.slice(start, size), job.fields, int64)
