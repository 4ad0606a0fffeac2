"""The BigQuery Storage Read API (``google.cloud.bigquery.storage.v1.BigQueryRead``, gRPC) of `hyp bigquery`.

Google's client reads a big query result through it instead of tabledata.list's JSON pages:
``RowIterator.to_arrow()`` / ``to_dataframe(bqstorage_client=...)`` opens a read session on the job's
destination table (with HYP_BIGQUERY_QUERY_RESULT_TABLES, jobs.py gives every query with rows an anonymous one,
as BigQuery does) and decodes the Arrow record batches ReadRows streams, with no per-cell work in Python.

- ``CreateReadSession``: Arrow only (Avro: INVALID_ARGUMENT), one stream (``max_stream_count`` is an upper
  bound, as on BigQuery), none for an empty result. ``read_options.selected_fields`` (columns and nested fields
  outside REPEATED records; the session's schema in the table's order, as documented) and ``row_restriction``
  (a filter run through the same translator and confined DuckDB as queries: one boolean expression, no
  subquery, no aggregate). ``table_modifiers.snapshot_time``: INVALID_ARGUMENT (no time travel here).
- ``ReadRows``: the stream's record batches (Arrow IPC messages without the schema, which the session and the
  first response carry), from ``offset`` on; a query's result straight from the job's Arrow table, a table's
  rows as DuckDB reads its Parquet files (batch by batch, not held whole). Each response's protobuf bytes are
  written around the batch's IPC buffer (``_Frame``), the batch copied once on the way.
- ``ReadRows`` on a query job's ``projects/{p}/locations/{l}/jobs/{job}/streams/_default`` (no session): the job's
  result, the rows past jobs.query's Arrow first page (``queryResultsFormat: ARROW``, routes.py) read from an offset.
- ``SplitReadStream``: answers no split (allowed: the primary stream then reads everything).

Errors are gRPC status codes as BigQuery's: NOT_FOUND (table, session), INVALID_ARGUMENT, PERMISSION_DENIED.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pyarrow as pa

from services.bigquery import errors
from services.bigquery.jobs import Jobs
from services.bigquery.schema import Field, parse_fields

log = logging.getLogger("hyp.bigquery.read")

SERVICE = "google.cloud.bigquery.storage.v1.BigQueryRead"
# A ReadRows response holds about BATCH_BYTES (a gRPC client takes 4 MiB a message by default; Google's transport
# sets no limit) and at most BATCH_ROWS rows; a table's rows are read from DuckDB SCAN_ROWS at a time.
BATCH_BYTES = 2 * 1024 * 1024
BATCH_ROWS = 1_000_000
SCAN_ROWS = 65_536
SESSION_TTL_S = 6 * 3600  # a read session's life (BigQuery: at least 6 hours)
MAX_SESSIONS = 1000  # sessions remembered; the oldest forgotten first
_TABLE = re.compile(r"projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)")
_PARENT = re.compile(r"projects/([^/]+)")
_STREAM = re.compile(r"(projects/[^/]+/locations/[^/]+/sessions/[^/]+)/streams/([^/]+)")
_JOB_STREAM = re.compile(r"projects/([^/]+)/locations/[^/]+/jobs/([^/]+)/streams/_default")  # a query's own result
_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ALREADY_EXISTS,
}


class ReadError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _invalid(message: str) -> ReadError:
    return ReadError(grpc.StatusCode.INVALID_ARGUMENT, message)


@dataclass
class Session:
    name: str
    schema: pa.Schema
    rows: Callable[[], Iterator[pa.RecordBatch]]  # the stream's batches, from the start, each time it is read
    expires: float
    schema_bytes: bytes = b""  # the schema as an Arrow IPC message, serialized once


def _types() -> Any:
    from google.cloud.bigquery_storage_v1 import types

    return types


class ReadApi:
    """The Read API's sessions over the jobs' results and the catalog's tables."""

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self.lock = threading.Lock()
        self.t = _types()
        self.frame = _Frame(self.t)

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        t = self.t
        methods = {
            "CreateReadSession": grpc.unary_unary_rpc_method_handler(
                self._guarded(self.create_read_session),
                request_deserializer=t.CreateReadSessionRequest.pb().FromString,
                response_serializer=lambda m: m.SerializeToString(),
            ),
            "ReadRows": grpc.unary_stream_rpc_method_handler(
                self.read_rows,
                request_deserializer=t.ReadRowsRequest.pb().FromString,
                response_serializer=_as_bytes,  # read_rows yields each response's wire bytes (_Frame)
            ),
            "SplitReadStream": grpc.unary_unary_rpc_method_handler(
                self._guarded(self.split_read_stream),
                request_deserializer=t.SplitReadStreamRequest.pb().FromString,
                response_serializer=lambda m: m.SerializeToString(),
            ),
        }
        return [grpc.method_handlers_generic_handler(SERVICE, methods)]

    def _guarded(self, method: Callable[[Any], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return method(request)
            except Exception as exc:
                _abort(context, exc)

        return call

    # -- CreateReadSession
    def create_read_session(self, request: Any) -> Any:
        t = self.t
        wanted = request.read_session
        if not _PARENT.fullmatch(request.parent):
            raise _invalid(f"Invalid parent {request.parent!r}: expected projects/{{project}}.")
        found = _TABLE.fullmatch(wanted.table)
        if not found:
            raise _invalid(f"Invalid table {wanted.table!r}: expected projects/{{p}}/datasets/{{d}}/tables/{{t}}.")
        project, dataset, table = found.groups()
        arrow = t.DataFormat.ARROW.value
        if wanted.data_format != arrow:
            raise _invalid("Only the ARROW data format is supported by hyp bigquery (AVRO is not).")
        if wanted.table_modifiers.HasField("snapshot_time"):
            raise _invalid("table_modifiers.snapshot_time is not supported by hyp bigquery (no time travel).")
        options = wanted.read_options
        if options.HasField("sample_percentage"):
            raise _invalid("read_options.sample_percentage is not supported by hyp bigquery.")
        fields, rows, count = self._plan(
            project, dataset, table, list(options.selected_fields), options.row_restriction
        )
        schema = _schema(fields)
        schema_bytes = schema.serialize().to_pybytes()
        session_id = "hyp" + uuid.uuid4().hex
        name = f"projects/{project}/locations/us/sessions/{session_id}"
        expires = time.time() + SESSION_TTL_S
        with self.lock:
            self.sessions[name] = Session(name, schema, rows, expires, schema_bytes)
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        out = t.ReadSession.pb()()
        out.name = name
        out.expire_time.FromSeconds(int(expires))
        out.data_format = arrow
        out.arrow_schema.serialized_schema = schema_bytes
        out.table = wanted.table
        out.read_options.CopyFrom(options)
        if count != 0 and (request.max_stream_count == 0 or request.max_stream_count >= 1):
            out.streams.add().name = f"{name}/streams/0"
        if count is not None:
            out.estimated_row_count = count
        return out

    def _plan(
        self, project: str, dataset: str, table: str, selected: list[str], restriction: str
    ) -> tuple[tuple[Field, ...], Callable[[], Iterator[pa.RecordBatch]], int | None]:
        """The session's fields, how to read its rows, and its row count when known."""
        job = self.jobs.anonymous(project, dataset, table)
        if job is not None:
            table_fields = job.fields
        else:
            resource, _ = self.jobs.catalog.resource_files(project, dataset, table)
            if resource.get("type") == "VIEW":
                raise _invalid(f"Cannot read a table of type VIEW through the Read API: {project}:{dataset}.{table}")
            table_fields = parse_fields((resource.get("schema") or {}).get("fields"))
        fields = _selected(table_fields, selected)
        whole = all(any(f is t for t in table_fields) for f in fields)  # no record cut to some of its fields
        if job is not None and job.data is not None and not restriction.strip() and whole:
            names, count = [f.name for f in fields], job.data.num_rows

            def result() -> Iterator[pa.RecordBatch]:  # the job looked up again: a session does not keep its rows
                again = self.jobs.anonymous(project, dataset, table)
                assert again is not None and again.data is not None
                return iter(again.data.select(names).to_batches(BATCH_ROWS))

            return fields, result, count
        originals = {f.name: f for f in table_fields}
        columns = ", ".join(f"{_expression(f, originals[f.name], f'`{f.name}`')} AS `{f.name}`" for f in fields)
        query = f"SELECT {columns} FROM `{project}.{dataset}.{table}`"
        if restriction.strip():
            query += f" WHERE {_restriction(restriction)}"
        _, batches = self.jobs.stream(project, query, SCAN_ROWS)
        return fields, batches, None

    # -- ReadRows
    def read_rows(self, request: Any, context: grpc.ServicerContext) -> Iterator[bytes]:
        """The stream's ``ReadRowsResponse`` messages, each as its wire bytes (the Arrow batch copied once)."""
        try:
            schema, schema_bytes, rows = self._stream(request.read_stream)
            if request.offset < 0:
                raise _invalid(f"Invalid offset {request.offset}.")
            skip, first = request.offset, True
            for batch in _pieces(rows()):
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                if skip:
                    batch, skip = batch.slice(skip), 0
                batch = _conform(batch, schema)
                yield self.frame.response(batch, schema_bytes if first else None)
                first = False
        except Exception as exc:
            _abort(context, exc)

    def _stream(self, name: str) -> tuple[pa.Schema, bytes, Callable[[], Iterator[pa.RecordBatch]]]:
        """A stream's schema, its IPC bytes and its batches: a read session's stream, or a query job's
        ``_default`` stream (jobs.query's ``queryResultsFormat: ARROW`` reads the rows past its first page there)."""
        job_stream = _JOB_STREAM.fullmatch(name)
        if job_stream is not None:
            job = self.jobs.get(*job_stream.groups())
            if not job.complete or job.data is None or job.error is not None:
                raise ReadError(grpc.StatusCode.FAILED_PRECONDITION, f"Job has no query result to read: {name}")
            data, fields = job.data, job.fields
            schema = _schema(fields)
            return schema, schema.serialize().to_pybytes(), lambda: iter(_result(data, fields).to_batches(BATCH_ROWS))
        found = _STREAM.fullmatch(name)
        with self.lock:
            session = self.sessions.get(found.group(1)) if found else None
        if session is None or found is None or found.group(2) != "0":
            raise ReadError(grpc.StatusCode.NOT_FOUND, f"Stream not found: {name}")
        if session.expires < time.time():
            raise ReadError(grpc.StatusCode.FAILED_PRECONDITION, f"Read session expired: {session.name}")
        return session.schema, session.schema_bytes, session.rows

    # -- SplitReadStream
    def split_read_stream(self, request: Any) -> Any:
        found = _STREAM.fullmatch(request.name)
        with self.lock:
            known = found is not None and found.group(1) in self.sessions
        if not known:
            raise ReadError(grpc.StatusCode.NOT_FOUND, f"Stream not found: {request.name}")
        return self.t.SplitReadStreamResponse.pb()()  # no split: the primary stream reads on to the end


def _as_bytes(message: Any) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class _Frame:
    """A ``ReadRowsResponse``'s protobuf wire bytes written around the Arrow batch's IPC buffer, which is copied
    once into them: building the message instead copies the batch three times (``to_pybytes``, the field's
    assignment, ``SerializeToString``), most of ReadRows' CPU. The field numbers come from the message's descriptor;
    a parser takes fields in any order, so the small fields follow the batch (tests/services/bigquery/test_read_api.py
    parses the bytes back)."""

    def __init__(self, t: Any) -> None:
        fields = t.ReadRowsResponse.pb().DESCRIPTOR.fields_by_name
        batch = fields["arrow_record_batch"]
        inner = batch.message_type.fields_by_name
        self.batch_tag = _varint(batch.number << 3 | 2)
        self.data_tag = _varint(inner["serialized_record_batch"].number << 3 | 2)
        self.inner_rows_tag = _varint(inner["row_count"].number << 3)  # deprecated, still filled as before
        self.rows_tag = _varint(fields["row_count"].number << 3)
        schema = fields["arrow_schema"]
        self.schema_tag = _varint(schema.number << 3 | 2)
        self.schema_data_tag = _varint(schema.message_type.fields_by_name["serialized_schema"].number << 3 | 2)

    def response(self, batch: pa.RecordBatch, schema: bytes | None) -> bytes:
        data = batch.serialize()
        rows = _varint(batch.num_rows)
        inner_head = self.data_tag + _varint(data.size)
        inner_tail = self.inner_rows_tag + rows
        head = self.batch_tag + _varint(len(inner_head) + data.size + len(inner_tail)) + inner_head
        tail = inner_tail + self.rows_tag + rows
        if schema is not None:
            wrapped = self.schema_data_tag + _varint(len(schema)) + schema
            tail += self.schema_tag + _varint(len(wrapped)) + wrapped
        return b"".join((head, data, tail))


def _abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    if isinstance(exc, ReadError):
        context.abort(exc.code, exc.message)
    if isinstance(exc, errors.BigQueryError):
        context.abort(_CODES.get(exc.code, grpc.StatusCode.INTERNAL), exc.message)
    log.exception("read api: internal error")
    context.abort(grpc.StatusCode.INTERNAL, f"internal error: {exc}")


def _selected(fields: tuple[Field, ...], selected: list[str]) -> tuple[Field, ...]:
    """The session's fields: ``selected`` (case-insensitive; ``record.field`` selects a nested field, the record
    then holding only the fields selected), in the table's order; all when none."""
    if not selected:
        return fields
    tree: dict[str, Any] = {}  # a field's lower-case name -> None (the whole field) or the tree of its selected fields
    for name in selected:
        node, level, parts = tree, fields, name.split(".")
        for depth, part in enumerate(parts):
            found = next((f for f in level if f.name.lower() == part.lower()), None)
            if found is None:
                raise _invalid(f"The following selected fields do not exist in the table schema: {name}")
            key = found.name.lower()
            if depth == len(parts) - 1:
                node[key] = None
                break
            if found.type != "RECORD":
                raise _invalid(f"Selected field {name}: {found.name} is not a RECORD.")
            if found.mode == "REPEATED":
                raise _invalid(f"Selecting a field inside a REPEATED record ({name}) is not supported by hyp bigquery.")
            if key in node and node[key] is None:  # the whole record is selected already
                break
            node, level = node.setdefault(key, {}), found.fields
    return _project(fields, tree)


def _project(fields: tuple[Field, ...], tree: dict[str, Any]) -> tuple[Field, ...]:
    out: list[Field] = []
    for f in fields:
        if f.name.lower() not in tree:
            continue
        sub = tree[f.name.lower()]
        out.append(f if sub is None else Field(f.name, "RECORD", f.mode, _project(f.fields, sub), f.description))
    return tuple(out)


def _expression(field: Field, original: Field, path: str) -> str:
    """The SQL of a selected field: its column, or for a record cut to some of its fields a STRUCT of them
    (NULL where the record is)."""
    if field is original:
        return path
    originals = {f.name: f for f in original.fields}
    parts = [f"{_expression(f, originals[f.name], f'{path}.`{f.name}`')} AS `{f.name}`" for f in field.fields]
    return f"IF({path} IS NULL, NULL, STRUCT({', '.join(parts)}))"


def _restriction(text: str) -> str:
    """A row restriction checked to be one boolean expression (no subquery, no aggregate, no second statement):
    it then runs inside the session's query, through the query translator and the confined connection."""
    from sqlglot import exp

    from services.bigquery.sql import parse

    try:
        tree = parse(f"SELECT 1 FROM t WHERE {text}")
    except errors.BigQueryError as exc:
        raise _invalid(f"Invalid row_restriction: {exc.message}") from None
    where = tree.args.get("where") if isinstance(tree, exp.Select) else None
    if where is None or len(list(tree.find_all(exp.Select))) != 1 or tree.find(exp.Subquery, exp.Union) is not None:
        raise _invalid(f"Invalid row_restriction {text!r}: one filter expression, no subquery.")
    if where.find(exp.AggFunc, exp.Window) is not None:
        raise _invalid(f"Invalid row_restriction {text!r}: aggregates are not supported.")
    return str(where.this.sql(dialect="bigquery"))


def _schema(fields: tuple[Field, ...]) -> pa.Schema:
    """The session's Arrow schema: BigQuery's Arrow types for the fields (schema.Field.arrow), every one nullable
    but REQUIRED ones, so a batch of the job's or DuckDB's own types is cast to it."""
    return pa.schema([f.arrow() for f in fields])


def _result(data: pa.Table, fields: tuple[Field, ...]) -> pa.Table:
    """A job's result table, its columns in the fields' order."""
    return data.select([f.name for f in fields])


def arrow_page(data: pa.Table, fields: tuple[Field, ...], start: int, size: int) -> tuple[bytes, bytes]:
    """jobs.query's first page as Arrow (``queryResultsFormat: ARROW``): the schema and one record batch of rows
    ``start`` to ``start + size``, as IPC messages, with the same types the Read API streams."""
    schema = _schema(fields)
    page = _result(data, fields).slice(start, size).combine_chunks()
    batches = page.to_batches()
    if batches:
        batch = _conform(batches[0], schema)
    else:
        batch = pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)
    return schema.serialize().to_pybytes(), batch.serialize().to_pybytes()


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with the session's exact types (IPC batches carry no schema: the reader applies the session's)."""
    if batch.schema.equals(schema):
        return batch
    arrays = [column.cast(field.type) for column, field in zip(batch.columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _pieces(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Batches cut to about ``BATCH_BYTES`` each."""
    for batch in batches:
        size = batch.nbytes
        if size <= BATCH_BYTES or batch.num_rows <= 1:
            yield batch
            continue
        step = max(1, batch.num_rows * BATCH_BYTES // size)
        for start in range(0, batch.num_rows, step):
            yield batch.slice(start, step)
