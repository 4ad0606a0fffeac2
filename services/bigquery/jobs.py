"""Query jobs: jobs.query, jobs.insert (query jobs), jobs.get and jobs.getQueryResults.

A query runs on an in-memory DuckDB connection confined to the warehouse folder (services/warehouse/guard.py:
no other file, no extension, settings locked), with each table the translated SQL names bound to that table's
live Parquet files; the job keeps its result (in memory, the last ``MAX_JOBS`` jobs) for getQueryResults' pages.

Most statements run at once, in the request. A long one (``CREATE MODEL``) runs as a background job on a few
worker threads (``WORKERS``; at most ``MAX_BACKGROUND`` more wait their turn, one more: ``rateLimitExceeded``, which
the client retries): jobs.get and jobs.list show it ``PENDING``, then ``RUNNING`` with its training progress in
``statistics.query.mlStatistics.iterationResults``, then ``DONE`` with its result or ``status.errorResult``.
``answer_running`` says whether jobs.insert answers at once (``RUNNING``, as BigQuery does) and jobs.query
after its ``timeoutMs``; that needs a getQueryResults that answers a running job with ``jobComplete: false``
(:meth:`Jobs.results`). Without it they answer when the job is done. Local only: jobs live in memory, a restart
forgets them (a running CREATE MODEL is lost, its model not saved).
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import queue
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
from sqlglot import exp

from services.bigquery import dml, errors, statements
from services.bigquery.catalog import Catalog, Footer
from services.bigquery.ml import functions as ml
from services.bigquery.ml import progress as ml_progress
from services.bigquery.schema import Field, arrow_field, arrow_schema, parse_fields
from services.bigquery.sql import POSITIONAL, Translation, Translations, engine_error, invalid_query, parse, translate

MAX_JOBS = 200
MAX_VIEW_DEPTH = 16  # views over views, as deep as BigQuery allows
WORKERS = 2  # background jobs run at once (a CREATE MODEL's training is CPU-bound)
MAX_BACKGROUND = 8  # background jobs waiting for a worker; one more is refused with rateLimitExceeded
QUERY_TIMEOUT_S = 10.0  # jobs.query's timeoutMs when the request gives none (BigQuery's default)
ANONYMOUS_TABLE_PREFIX = "anon"  # a query's result table: anon<job id> in the project's anonymous dataset
# a statement that runs in the background: CREATE [OR REPLACE] MODEL, after any comments
LONG_STATEMENT = re.compile(
    r"\A(?:\s|--[^\n]*(?:\n|\Z)|#[^\n]*(?:\n|\Z)|/\*.*?\*/)*CREATE\s+(?:OR\s+REPLACE\s+)?MODEL\b", re.I | re.S
)


@dataclass
class Job:
    """A job: its resource as jobs.get answers it and, once done, its result. A background job's ``resource``
    is a snapshot: its state, and while it runs the statement's progress (services/bigquery/ml/progress.py)."""

    stored: dict[str, Any]
    fields: tuple[Field, ...] = ()
    data: pa.Table | None = None
    error: errors.BigQueryError | None = None
    affected: int | None = None  # rows a DML statement changed
    progress: ml_progress.Progress | None = None  # a background job's, while it runs
    query_id: str | None = None  # jobs.query answered without a job (JOB_CREATION_OPTIONAL): the query's id
    creation_reason: str | None = None  # why JOB_CREATION_OPTIONAL still made a job (JobCreationReason's code)
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def resource(self) -> dict[str, Any]:
        stored = self.stored  # replaced whole when the job ends, never changed in place while it runs
        report = self.progress
        if self.finished.is_set() or report is None:
            return stored
        query = {"statementType": "CREATE_MODEL", **report.statistics()}
        return stored | {"statistics": stored["statistics"] | {"query": query}}

    @property
    def complete(self) -> bool:
        return self.finished.is_set()

    def wait(self, timeout_s: float | None) -> bool:
        """Block until the job is done or ``timeout_s`` passed (None: until done); whether it is done."""
        return self.finished.wait(timeout_s)


@dataclass
class Answer:
    fields: tuple[Field, ...]
    data: pa.Table | None  # None for a dry run and for DDL/DML
    scanned: int
    statement_type: str = "SELECT"
    affected: int | None = None
    dml_stats: dict[str, str] | None = None  # rows a DML statement inserted, deleted, updated


class Background:
    """A few daemon threads running jobs from a bounded queue, each in the context it was submitted from (a
    caller's progress report, as `hyp sql` holds one, reaches the job)."""

    def __init__(self, workers: int = WORKERS, limit: int = MAX_BACKGROUND) -> None:
        self.workers, self.tasks = workers, queue.Queue[tuple[contextvars.Context, Callable[[], None]]](limit)
        self.started = 0
        self.lock = threading.Lock()

    def submit(self, work: Callable[[], None]) -> None:
        with self.lock:
            try:
                self.tasks.put_nowait((contextvars.copy_context(), work))
            except queue.Full:
                raise errors.BigQueryError(
                    403, "rateLimitExceeded", f"Too many jobs ({self.tasks.maxsize}) waiting for a worker; retry later."
                ) from None
            if self.started < self.workers:
                self.started += 1
                threading.Thread(target=self._serve, name=f"bigquery-job-{self.started}", daemon=True).start()

    def _serve(self) -> None:
        while True:
            context, work = self.tasks.get()
            try:
                context.run(work)
            finally:
                self.tasks.task_done()


class Jobs:
    def __init__(
        self,
        catalog: Catalog,
        export_dir: str | os.PathLike[str] | None = None,
        *,
        answer_running: bool = False,
        background: Background | None = None,
        result_tables: bool = False,
    ) -> None:
        self.catalog = catalog
        self.result_tables = result_tables  # query jobs report an anonymous destination table (_destined)
        self.export_dir = export_dir  # where extract jobs may write (extract.py); None: <warehouse>/_exports
        self.jobs: OrderedDict[tuple[str, str], Job] = OrderedDict()
        self.lock = threading.Lock()
        self.answer_running = answer_running  # jobs.insert/jobs.query may answer a job still running
        self.background = background or Background()
        self.translations = Translations()  # repeated query text: parsed and generated once (sql.Translations)

    def results(self, project: str, job_id: str, timeout_s: float | None) -> Job:
        """getQueryResults: the job once done, or after ``timeout_s`` still running (``job.complete`` false)."""
        job = self.get(project, job_id)
        job.wait(timeout_s)
        return job

    def get(self, project: str, job_id: str) -> Job:
        with self.lock:
            job = self.jobs.get((project, job_id))
        if job is None:
            raise errors.not_found(f"Job {project}:{job_id}")
        return job

    def list_jobs(self, project: str, state: str | None = None) -> list[dict[str, Any]]:
        """jobs.list: the project's kept jobs (the last MAX_JOBS of every project), newest first, each as the list
        entry BigQuery returns (the job resource with ``state`` beside it); ``state``: only jobs in that state."""
        with self.lock:
            kept = [job.resource for (p, _), job in reversed(self.jobs.items()) if p == project]
        entries = [{**r, "state": r["status"]["state"]} for r in kept]
        return [e for e in entries if state is None or e["state"] == state.upper()]

    def insert(self, project: str, body: Mapping[str, Any]) -> Job:
        """jobs.insert of a query job (other job kinds: a 400 saying so)."""
        ref = dict(body.get("jobReference") or {})
        job_id = str(ref.get("jobId") or uuid.uuid4().hex)
        location = str(ref.get("location") or "US")
        configuration = dict(body.get("configuration") or {})
        query = configuration.get("query")
        if isinstance(configuration.get("copy"), Mapping):
            copy = configuration["copy"]
            return self._other(project, body, "COPY", lambda: {"copy": self._copy(project, copy)})
        if isinstance(configuration.get("extract"), Mapping):
            from services.bigquery.extract import run_extract

            extract = configuration["extract"]
            work = lambda: {"extract": run_extract(self.catalog, project, extract, self.export_dir)}  # noqa: E731
            return self._other(project, body, "EXTRACT", work)
        if not isinstance(query, Mapping):
            kinds = [k for k in ("load", "copy", "extract") if k in configuration]
            what = "load from sourceUris" if kinds == ["load"] else kinds[0] if kinds else "unknown"
            raise errors.invalid(f"Job type {what} is not supported by hyp bigquery yet.")
        with self.lock:
            if (project, job_id) in self.jobs:
                raise errors.duplicate(f"Job {project}:{location}.{job_id}")
        dry_run = bool(configuration.get("dryRun"))
        if not dry_run and LONG_STATEMENT.match(str(query.get("query") or "")):
            job = self._background(project, job_id, location, dict(query), configuration)
            if not self.answer_running:
                job.wait(None)
            return job
        job = self._run(project, job_id, location, dict(query), dry_run)
        job.resource["configuration"] = configuration | {
            "jobType": "QUERY",
            "query": self._destined(project, job, query),
        }
        if not dry_run:
            self._keep(project, job_id, job)
        return job

    def load(self, project: str, body: Mapping[str, Any], data: bytes) -> Job:
        """A load job whose data came in the upload (loads.py); done when this returns."""
        from services.bigquery.loads import run_load

        load = (body.get("configuration") or {}).get("load") or {}
        return self._other(project, body, "LOAD", lambda: {"load": run_load(self.catalog, project, load, data)})

    def _copy(self, project: str, copy: Mapping[str, Any]) -> dict[str, Any]:
        """copy_table: every source table's rows appended to the destination (same schema)."""
        sources = list(copy.get("sourceTables") or []) + ([copy["sourceTable"]] if copy.get("sourceTable") else [])
        dest = copy.get("destinationTable") or {}
        if not sources or not dest.get("datasetId") or not dest.get("tableId"):
            raise errors.invalid("A copy job needs source tables and a destination table.")
        target = (dest.get("projectId") or project, dest["datasetId"], dest["tableId"])
        copied = 0
        for index, source in enumerate(sources):
            fields, rows = self.catalog.read(source.get("projectId") or project, source["datasetId"], source["tableId"])
            write = str(copy.get("writeDisposition") or "WRITE_EMPTY") if index == 0 else "WRITE_APPEND"
            create = str(copy.get("createDisposition") or "CREATE_IF_NEEDED")
            statements.write_table(self.catalog, target, fields, rows, write, create)
            copied += rows.num_rows
        return {"copiedRows": str(copied)}

    def _other(self, project: str, body: Mapping[str, Any], kind: str, work: Any) -> Job:
        """A load or copy job: ``work()`` answers its statistics; done when this returns."""
        ref = dict(body.get("jobReference") or {})
        job_id = str(ref.get("jobId") or uuid.uuid4().hex)
        location = str(ref.get("location") or "US")
        configuration = dict(body.get("configuration") or {})
        with self.lock:
            if (project, job_id) in self.jobs:
                raise errors.duplicate(f"Job {project}:{location}.{job_id}")
        now = str(int(time.time() * 1000))
        resource: dict[str, Any] = {
            "kind": "bigquery#job",
            "id": f"{project}:{location}.{job_id}",
            "jobReference": {"projectId": project, "jobId": job_id, "location": location},
            "configuration": configuration | {"jobType": kind},
            "status": {"state": "DONE"},
            "statistics": {"creationTime": now, "startTime": now},
        }
        job = Job(resource)
        try:
            resource["statistics"] |= work()
        except Exception as exc:  # the job's errorResult (a full disk's too); anything else is a bug: a 500
            job.error = error = errors.from_exception(exc)
            if error is not exc and error.code == 500:
                raise
            detail = error.body()["error"]["errors"][0]
            resource["status"] |= {"errorResult": detail, "errors": [detail]}
        resource["statistics"]["endTime"] = str(int(time.time() * 1000))
        job.finished.set()
        self._keep(project, job_id, job)
        return job

    def query(self, project: str, body: Mapping[str, Any], page_rows: int | None = None) -> Job:
        """jobs.query: the same run, the request's fields as the query configuration. With ``jobCreationMode``
        JOB_CREATION_OPTIONAL, a result the first page holds (at most ``page_rows`` rows; None: any) makes no
        job: nothing is kept (jobs.get and jobs.list do not know it) and the answer names a ``queryId``; a longer
        one, or a statement that runs in the background, is a job, its ``creation_reason`` said."""
        optional = body.get("jobCreationMode") == "JOB_CREATION_OPTIONAL"
        job_id = str(body.get("requestId") or "") or f"job_{uuid.uuid4().hex}"
        location = str(body.get("location") or "US")
        config = {
            k: body[k]
            for k in ("query", "useLegacySql", "queryParameters", "defaultDataset", "parameterMode")
            if k in body
        }
        if not body.get("dryRun") and LONG_STATEMENT.match(str(config.get("query") or "")):
            job = self._background(project, job_id, location, config, {"query": config})
            job.creation_reason = "OTHER" if optional else None
            timeout = body.get("timeoutMs")
            wait = (
                (int(timeout) / 1000 if isinstance(timeout, int | str) else QUERY_TIMEOUT_S)
                if self.answer_running
                else None
            )
            if job.wait(wait) and job.error is not None:
                raise job.error
            return job
        job = self._run(project, job_id, location, config, bool(body.get("dryRun")))
        job.resource["configuration"] = {"query": self._destined(project, job, config), "jobType": "QUERY"}
        if job.error is not None:
            raise job.error
        if body.get("dryRun"):
            return job
        if optional and (job.data is None or page_rows is None or job.data.num_rows <= page_rows):
            job.query_id = job_id  # answered whole: no job to keep (the result goes with the answer)
            return job
        job.creation_reason = "LARGE_RESULTS" if optional else None
        self._keep(project, job_id, job)
        return job

    def warm_up(self, project: str, *, footers: bool) -> None:
        """What the first query after a start would pay, paid beforehand: the engine's imports and the confined
        database (a fixed cost); with ``footers``, the footers of the workshop tables' files (once per file)."""
        from services.bigquery.workshop import DATASET, TABLE_NAMES

        if not footers:
            self.select(project, "SELECT 1 AS x", None)
            return
        for table in TABLE_NAMES:
            self.catalog.resource_files(project, DATASET, table)

    def view_schema(self, project: str, query: str) -> tuple[Field, ...]:
        """The schema a view's query answers (BigQuery fixes a view's schema when it is created)."""
        return self._execute(project, {"query": query, "useLegacySql": False}, dry_run=True).fields

    def _destined(self, project: str, job: Job, query: Mapping[str, Any]) -> dict[str, Any]:
        """The job's query configuration with its ``destinationTable``: the one asked for, or for a query with
        rows, as BigQuery does, an anonymous table holding its result (readable through tabledata.list and the
        Storage Read API, so Google's client can read a big result as Arrow streams)."""
        config = dict(query)
        if not self.result_tables or config.get("destinationTable") or job.data is None or job.error is not None:
            return config
        job_id = job.resource["jobReference"]["jobId"]
        table = {
            "projectId": project,
            "datasetId": anonymous_dataset(project),
            "tableId": ANONYMOUS_TABLE_PREFIX + job_id,
        }
        return config | {"destinationTable": table}

    def anonymous(self, project: str, dataset: str, table: str) -> Job | None:
        """The done query job whose result is ``project.dataset.table`` when that names an anonymous result table
        (None when ``dataset`` is not the project's anonymous dataset); notFound when no kept job has it."""
        if dataset != anonymous_dataset(project):
            return None
        with self.lock:
            job = self.jobs.get((project, table.removeprefix(ANONYMOUS_TABLE_PREFIX)))
        if not table.startswith(ANONYMOUS_TABLE_PREFIX) or job is None or job.data is None or job.error is not None:
            raise errors.not_found(f"Table {project}:{dataset}.{table}")
        return job

    def stream(
        self, project: str, query: str, batch_rows: int, timeout_s: float | None = None
    ) -> tuple[tuple[Field, ...], Callable[[], Iterator[pa.RecordBatch]]]:
        """A query's fields (from a dry run, now) and a function that runs it and yields its rows as record
        batches of at most ``batch_rows`` rows, read from DuckDB as they come (the Storage Read API's ReadRows):
        the same translation, binding and confinement as a job's query."""
        import duckdb

        from services.warehouse import guard
        from services.warehouse.tables import WarehouseError

        translation = self.translations.translate(query, project, None)
        fields = self._select(translation, None, True).fields

        def batches() -> Iterator[pa.RecordBatch]:
            sources: dict[str, Any] = {}
            self._bind(translation, sources, 0)
            try:
                guard.check_read_only(translation.sql)
            except WarehouseError as exc:
                raise invalid_query(str(exc).removeprefix("sql: ")) from None
            with guard.confined_cursor(self.catalog.warehouse_dir) as con:
                try:
                    attach(con, sources)
                    reader = con.sql(translation.sql).fetch_record_batch(batch_rows)
                    for batch in reader:
                        yield from _hugeint_to_int64(pa.Table.from_batches([batch])).to_batches()
                except duckdb.Error as exc:
                    raise invalid_query(engine_error(guard.refusal(exc))) from None

        return fields, batches

    def _keep(self, project: str, job_id: str, job: Job) -> None:
        with self.lock:
            self.jobs[(project, job_id)] = job
            while len(self.jobs) > MAX_JOBS:
                self.jobs.popitem(last=False)

    def _background(
        self, project: str, job_id: str, location: str, config: dict[str, Any], configuration: Mapping[str, Any]
    ) -> Job:
        """A job kept at once (PENDING) and run by a worker; refused (rateLimitExceeded) when too many wait."""
        job = self._new(project, job_id, location, "PENDING")
        job.stored["configuration"] = dict(configuration) | {"jobType": "QUERY"}
        with self.lock:
            if (project, job_id) in self.jobs:
                raise errors.duplicate(f"Job {project}:{location}.{job_id}")
        self._keep(project, job_id, job)
        try:
            self.background.submit(lambda: self._work(job, project, config, False, background=True))
        except errors.BigQueryError:
            with self.lock:
                self.jobs.pop((project, job_id), None)
            raise
        return job

    def _new(self, project: str, job_id: str, location: str, state: str) -> Job:
        now = str(int(time.time() * 1000))
        return Job(
            {
                "kind": "bigquery#job",
                "id": f"{project}:{location}.{job_id}",
                "jobReference": {"projectId": project, "jobId": job_id, "location": location},
                "status": {"state": state},
                "statistics": {"creationTime": now} | ({"startTime": now} if state != "PENDING" else {}),
            }
        )

    def _run(self, project: str, job_id: str, location: str, config: dict[str, Any], dry_run: bool) -> Job:
        job = self._new(project, job_id, location, "RUNNING")
        self._work(job, project, config, dry_run)
        return job

    def _work(self, job: Job, project: str, config: dict[str, Any], dry_run: bool, background: bool = False) -> None:
        """Run the job's statement and end it: its result, and its resource replaced by the finished one (DONE,
        its statistics, or the error in ``status.errorResult``). Readers meanwhile see the running one."""
        started = job.stored
        if started["status"]["state"] == "PENDING":
            now = str(int(time.time() * 1000))
            job.stored = started | {
                "status": {"state": "RUNNING"},
                "statistics": started["statistics"] | {"startTime": now},
            }
        status: dict[str, Any] = {"state": "DONE"}
        statistics = dict(job.stored["statistics"])
        try:
            key = (project, str(job.stored["jobReference"]["jobId"])) if background else None  # cancellable
            with ml_progress.job(key) as report:  # a CREATE MODEL's mlStatistics (BigQuery ML's job statistics)
                job.progress = report
                answer = self._execute(project, config, dry_run)
            dest = config.get("destinationTable")
            if isinstance(dest, Mapping) and answer.data is not None:
                target = (str(dest.get("projectId") or project), str(dest.get("datasetId")), str(dest.get("tableId")))
                write, create = config.get("writeDisposition"), config.get("createDisposition")
                statements.write_table(
                    self.catalog,
                    target,
                    answer.fields,
                    answer.data,
                    write or "WRITE_EMPTY",
                    create or "CREATE_IF_NEEDED",
                )
            job.fields, job.data, job.affected = answer.fields, answer.data, answer.affected
            stats: dict[str, Any] = {
                "totalBytesProcessed": str(answer.scanned),
                "totalBytesBilled": "0",
                "cacheHit": False,
                "statementType": answer.statement_type,
                "schema": {"fields": [f.to_api() for f in answer.fields]},
            }
            if answer.affected is not None:
                stats["numDmlAffectedRows"] = str(answer.affected)
            if answer.dml_stats is not None:
                stats["dmlStats"] = answer.dml_stats
            stats |= report.statistics()
            statistics |= {"totalBytesProcessed": str(answer.scanned), "query": stats}
        except Exception as exc:  # a background job ends whatever happens (its waiters wait for it)
            job.error = error = errors.from_exception(exc)
            detail = error.body()["error"]["errors"][0]
            status |= {"errorResult": detail, "errors": [detail]}
            if error is not exc and error.code == 500 and not background:
                raise  # in the request: the server's own error answer
        finally:
            statistics["endTime"] = str(int(time.time() * 1000))
            job.stored = job.stored | {"status": status, "statistics": statistics}
            job.finished.set()

    def _execute(self, project: str, config: Mapping[str, Any], dry_run: bool) -> Answer:
        if config.get("useLegacySql") is True:
            raise invalid_query("Legacy SQL is not supported by hyp bigquery: set useLegacySql to false.")
        text = config.get("query")
        if not isinstance(text, str) or not text.strip():
            raise invalid_query("Query text is empty.")
        default = config.get("defaultDataset") or {}
        home, dataset = str(default.get("projectId") or project), default.get("datasetId")
        translation = self.translations.get(text, home, dataset)
        if translation is not None:  # the same text before, a query without ML.* functions
            args = _parameters(config.get("queryParameters") or [], translation.named, translation.positional)
            return self._select(translation, args, dry_run)
        run = lambda q: self._select(translate(q, home, dataset), None, False).data  # noqa: E731
        tree = ml.expand(text, parse, self.catalog, home, dataset, run)  # ML.* table functions run first
        if isinstance(tree, exp.Query):
            translation = self._translated(text, tree, home, dataset)
            args = _parameters(config.get("queryParameters") or [], translation.named, translation.positional)
            return self._select(translation, args, dry_run)
        if dry_run:
            raise invalid_query("Dry runs of DDL and DML statements are not supported by hyp bigquery.")
        if dml.is_dml(tree):  # UPDATE, DELETE, MERGE (with query parameters too)
            changed = dml.run(self, home, dataset, tree, config.get("queryParameters") or [])
            return Answer((), None, 0, changed.statement_type, changed.affected, changed.stats)
        if config.get("queryParameters"):
            raise invalid_query("Query parameters in DDL are not supported by hyp bigquery yet.")

        def select(query: exp.Expr) -> tuple[tuple[Field, ...], pa.Table]:
            answer = self._select(translate(query.copy(), home, dataset), None, False)
            assert answer.data is not None
            return answer.fields, answer.data

        outcome = statements.run(self.catalog, home, dataset, tree, select)
        return Answer((), None, 0, outcome.statement_type, outcome.affected)

    def select(self, project: str, query: str, default_dataset: str | None, timeout_s: float | None = None) -> Answer:
        """One query (no DDL or DML) as a job would run it, stopped inside DuckDB after ``timeout_s``
        (QueryTimeout): the engine of ``hyp sql`` and the console's SQL box (services/bigquery/engine.py)."""
        translation = self.translations.get(query, project, default_dataset)
        if translation is None:
            run = lambda q: self._select(translate(q, project, default_dataset), None, False).data  # noqa: E731
            tree = ml.expand(query, parse, self.catalog, project, default_dataset, run)  # as _execute does
            translation = self._translated(query, tree, project, default_dataset)
        if translation.named or translation.positional:
            raise invalid_query("Query parameters are not supported here (only through the API).")
        return self._select(translation, None, False, timeout_s)

    def _translated(self, text: str, tree: exp.Expr, project: str, dataset: str | None) -> Translation:
        """``tree`` (parsed from ``text``, its ML.* calls expanded) translated, and kept for the same text again
        unless it reads an ML.* function's rows (computed for this run only)."""
        translation = translate(tree, project, dataset)
        if all(ref.dataset != ml.RESULTS for ref in translation.tables.values()):
            self.translations.put(text, project, dataset, "", translation)
        return translation

    def _select(self, translation: Translation, args: Any, dry_run: bool, timeout_s: float | None = None) -> Answer:
        """Run a translated query on a connection confined to the warehouse, its tables bound by name."""
        import duckdb

        from services.warehouse import guard  # the warehouse's one confinement of user SQL
        from services.warehouse.tables import WarehouseError

        sources: dict[str, Any] = {}
        scanned = self._bind(translation, sources, 0)
        if not translation.read_only:  # a kept translation is checked once
            try:
                guard.check_read_only(translation.sql)
            except WarehouseError as exc:
                raise invalid_query(str(exc).removeprefix("sql: ")) from None
            translation.read_only = True
        with guard.confined_cursor(self.catalog.warehouse_dir) as con:  # its relations and views are its own
            timer = threading.Timer(timeout_s, con.interrupt) if timeout_s is not None else None
            if timer is not None:
                timer.daemon = True
            try:
                attach(con, sources)
                sql = translation.sql if not dry_run else f"SELECT * FROM ({translation.sql}) LIMIT 0"
                if timer is not None:
                    timer.start()
                answer = con.sql(sql, params=args)
                if answer is None:
                    raise invalid_query("The statement returned no result (only queries are supported).")
                result = _hugeint_to_int64(answer.to_arrow_table())
            except duckdb.InterruptException:
                raise QueryTimeout(timeout_s or 0.0) from None
            except duckdb.Error as exc:
                raise invalid_query(engine_error(guard.refusal(exc))) from None
            finally:
                if timer is not None:
                    timer.cancel()
        return Answer(result_fields(result.schema), None if dry_run else result, scanned)

    def _bind(self, translation: Translation, sources: dict[str, Any], depth: int) -> int:
        """Bind each relation of ``translation`` (tables to their files, views to their own translated
        query, recursively) into ``sources``, dependencies first; the bytes of the files named."""
        import pyarrow.dataset as pds

        if depth > MAX_VIEW_DEPTH:
            raise invalid_query(f"Views nest more than {MAX_VIEW_DEPTH} levels deep.")
        scanned = 0
        for relation, ref in translation.tables.items():
            if (rows := ml.bound(ref.dataset, ref.table)) is not None:  # an ML.* table function's rows
                sources[relation] = rows
                continue
            if (done := self.anonymous(ref.project, ref.dataset, ref.table)) is not None:  # a query's result
                sources[relation] = done.data
                continue
            if ref.table.startswith("INFORMATION_SCHEMA."):
                sources[relation] = information_schema(self.catalog, ref.project, ref.dataset, ref.table)
                continue
            resource, footers = self.catalog.resource_files(ref.project, ref.dataset, ref.table)
            if resource.get("type") == "VIEW":
                inner = self.translations.translate(resource["view"]["query"], ref.project, prefix=f"{relation}_")
                if inner.named or inner.positional:
                    raise invalid_query(f"View {ref.dataset}.{ref.table} has query parameters.")
                scanned += self._bind(inner, sources, depth + 1)
                sources[relation] = inner.sql
                continue
            fields = parse_fields(resource["schema"].get("fields"))
            scanned += sum(f.size for f in footers)
            if footers:  # DuckDB reads the files itself (parallel, pushdown)
                sources[relation] = ParquetSource(footers, fields)
            else:
                sources[relation] = pds.dataset([], schema=arrow_schema(fields), format="parquet")
        return scanned


def anonymous_dataset(project: str) -> str:
    """The project's dataset of query result tables: hidden (a leading underscore) as BigQuery's anonymous
    datasets are, its name derived from the project."""
    return "_" + hashlib.sha1(project.encode(), usedforsecurity=False).hexdigest()


def attach(con: Any, sources: Mapping[str, Any]) -> None:
    """Make each bound relation (``Jobs._bind``) a name on the connection, in order."""
    for relation, source in sources.items():
        if isinstance(source, str):  # a view's translated query, over relations bound before it
            con.execute(f"CREATE TEMP VIEW {relation} AS {source}")
        elif isinstance(source, ParquetSource):
            source.bind(con, relation)
        else:
            con.register(relation, source)


class QueryTimeout(errors.BigQueryError):
    """The query ran past its time limit and DuckDB stopped it (BigQuery's job timeout)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(400, "timeout", f"no answer within {timeout_s:g} s, the query was stopped")


@dataclass
class ParquetSource:
    """A table's live files, read by DuckDB's read_parquet (inside the warehouse folder, which the
    confined connection allows); a column no file has yet (added later) falls back to pyarrow. The files'
    columns come from their cached footers (catalog.footer), so binding reads no file."""

    footers: list[Footer]
    fields: tuple[Field, ...]

    def bind(self, con: Any, relation: str) -> None:
        import pyarrow.dataset as pds

        paths = [str(f.path) for f in self.footers]
        schemas: list[pa.Schema] = []  # the distinct ones (equals is cheap; hashing a nested schema is not)
        for f in self.footers:
            if not any(f.schema is s or f.schema.equals(s) for s in schemas):
                schemas.append(f.schema)
        listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
        union = ", union_by_name = true" if len(schemas) > 1 else ""  # one schema (the usual case): no union
        scan = f"read_parquet([{listed}]{union})"
        present: dict[str, pa.DataType] = {}
        for schema in schemas:
            present |= {name: schema.field(name).type for name in schema.names}
        if all(f.name in present for f in self.fields):
            columns = ", ".join(_column(f, present[f.name]) for f in self.fields)
            con.execute(f"CREATE TEMP VIEW {relation} AS SELECT {columns} FROM {scan}")
        else:
            con.register(relation, pds.dataset(paths, schema=arrow_schema(self.fields), format="parquet"))


def _column(field: Field, stored: pa.DataType) -> str:
    """A column of a table's view: a TIMESTAMP stored without a zone (the warehouse's UTC times) read as one
    with it, so results type it as the table's schema does (schema.arrow_field)."""
    name = '"' + field.name.replace('"', '""') + '"'
    if field.type == "TIMESTAMP" and field.mode != "REPEATED" and pa.types.is_timestamp(stored) and not stored.tz:
        # the same instant as CAST(... AS TIMESTAMPTZ) in UTC, without DuckDB's time-zone conversion of every value
        # (ICU: 60 ms more for 1,000,000 rows, more than reading the column)
        return f"make_timestamptz(epoch_us({name})) AS {name}"
    return name


def information_schema(catalog: Catalog, project: str, dataset: str, view: str) -> pa.Table:
    """``dataset.INFORMATION_SCHEMA.TABLES`` / ``.COLUMNS`` from the catalog (their main columns)."""
    tables = catalog.list_tables(project, dataset)
    if view.endswith(".TABLES"):
        return pa.table(
            {
                "table_catalog": [project] * len(tables),
                "table_schema": [dataset] * len(tables),
                "table_name": [t["tableReference"]["tableId"] for t in tables],
                "table_type": ["BASE TABLE"] * len(tables),
                "creation_time": pa.array(
                    [datetime.fromtimestamp(int(t["creationTime"]) / 1000, UTC) for t in tables],
                    pa.timestamp("us", tz="UTC"),
                ),
            }
        )
    columns: dict[str, list[Any]] = {
        k: [] for k in ("table_catalog", "table_schema", "table_name", "column_name", "ordinal_position",
                        "is_nullable", "data_type", "is_partitioning_column")
    }  # fmt: skip
    for resource in tables:
        partition = (resource.get("timePartitioning") or {}).get("field")
        for position, f in enumerate(parse_fields(resource["schema"].get("fields")), 1):
            nullable = "NO" if f.mode == "REQUIRED" else "YES"
            partitioning = "YES" if f.name == partition else "NO"
            table = resource["tableReference"]["tableId"]
            row = (project, dataset, table, f.name, position, nullable, standard_type(f), partitioning)
            for key, value in zip(columns, row, strict=True):
                columns[key].append(value)
    return pa.table(columns)


_STANDARD = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}


def standard_type(f: Field) -> str:
    """A field's type as GoogleSQL writes it (``INT64``, ``STRUCT<a INT64>``, ``ARRAY<STRING>``)."""
    if f.type == "RECORD":
        kind = "STRUCT<" + ", ".join(f"{c.name} {standard_type(c)}" for c in f.fields) + ">"
    else:
        kind = _STANDARD.get(f.type, f.type)
    return f"ARRAY<{kind}>" if f.mode == "REPEATED" else kind


def _hugeint_to_int64(data: pa.Table) -> pa.Table:
    """DuckDB's counts and integer sums are HUGEINT (Arrow decimal(38, 0)); BigQuery's are INT64."""
    for i, column in enumerate(data.schema):
        if pa.types.is_decimal(column.type) and column.type.scale == 0 and column.type.precision == 38:
            try:
                data = data.set_column(i, column.name, data.column(i).cast(pa.int64()))
            except pa.ArrowInvalid:  # beyond INT64: stays NUMERIC-like, as BigQuery would overflow
                continue
    return data


def result_fields(schema: pa.Schema) -> tuple[Field, ...]:
    return tuple(arrow_field(f.name, f.type) for f in schema)


_SCALARS: dict[str, Any] = {
    "INT64": int,
    "INTEGER": int,
    "FLOAT64": float,
    "FLOAT": float,
    "NUMERIC": Decimal,
    "BIGNUMERIC": Decimal,
    "BOOL": lambda v: v.lower() == "true",
    "BOOLEAN": lambda v: v.lower() == "true",
    "STRING": str,
    "DATE": date.fromisoformat,
    "DATETIME": lambda v: datetime.fromisoformat(v.replace(" ", "T", 1)),
    "TIMESTAMP": lambda v: datetime.fromisoformat(v.replace(" ", "T", 1).removesuffix(" UTC").replace("Z", "+00:00")),
    "JSON": str,
}


def _parameters(raw: list[Any], named: list[str], positional: int) -> Any:
    """queryParameters -> DuckDB's arguments (a dict for @names, a list for ?)."""
    values: list[tuple[str | None, Any]] = []
    for param in raw:
        kind = (param.get("parameterType") or {}).get("type", "STRING")
        value = param.get("parameterValue") or {}
        try:
            if kind == "ARRAY":
                inner = (param["parameterType"].get("arrayType") or {}).get("type", "STRING")
                convert = _SCALARS[inner]
                decoded: Any = [convert(v.get("value")) for v in value.get("arrayValues") or []]
            else:
                decoded = None if value.get("value") is None else _SCALARS[kind](value["value"])
        except KeyError:
            raise invalid_query(f"Query parameter type {kind} is not supported by hyp bigquery yet.") from None
        except (ValueError, TypeError, ArithmeticError):
            raise invalid_query(
                f"Invalid value for query parameter {param.get('name') or ''} of type {kind}."
            ) from None
        values.append((param.get("name"), decoded))
    if named:
        given = {n: v for n, v in values if n}
        missing = [n for n in named if n not in given]
        if missing:
            raise invalid_query(f"Query parameter '{missing[0]}' not found")
        return {n: given[n] for n in named}
    if positional:
        if len(values) != positional:
            raise invalid_query(f"Query has {positional} positional parameters but {len(values)} were given.")
        return {f"{POSITIONAL}{i}": v for i, (_, v) in enumerate(values)}
    return None
