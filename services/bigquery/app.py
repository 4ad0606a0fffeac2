"""The FastAPI app of `hyp bigquery`: the REST routes, BigQuery's error shape, /health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from services.bigquery.settings import BigQuerySettings

log = logging.getLogger(__name__)


def _warm_up(jobs: Any, project: str, footers: bool) -> None:
    try:
        jobs.warm_up(project, footers=footers)
    except Exception as exc:  # a warm-up only: the first query will say what is wrong
        log.warning("warm-up failed: %s", exc)


def start_read_api(jobs: Any, settings: BigQuerySettings) -> Any:  # -> grpc.Server
    """The BigQuery Storage Read API (gRPC) beside the REST API, on ``read_port`` (None: the REST port + 1)."""
    from concurrent import futures

    import grpc

    from services.bigquery.read_api import ReadApi

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="bigquery-read"),
        handlers=ReadApi(jobs).handlers(),
        options=[("grpc.max_send_message_length", -1), ("grpc.so_reuseport", 0)],
    )

    def bind(port: int) -> int:
        """The port bound, 0 when it is taken (grpc returns 0 or, in the versions we pin, raises RuntimeError)."""
        try:
            return int(server.add_insecure_port(f"{settings.host}:{port}"))
        except RuntimeError:
            return 0

    wanted = settings.port + 1 if settings.read_port is None else settings.read_port
    port = bind(wanted)
    if port == 0 and settings.read_port is None:
        # the default (REST port + 1) is taken: the REST API must not die of it; a free port, logged
        port = bind(0)
        log.warning("read api: port %s is taken; serving on %s instead (set HYP_BIGQUERY_READ_PORT)", wanted, port)
    if port == 0:
        raise OSError(f"cannot bind the Read API (gRPC) to {settings.host}:{wanted}")
    server.start()
    log.info("bigquery storage read api serving", extra={"fields": {"grpc": f"{settings.host}:{port}"}})
    return server


def create_app(settings: BigQuerySettings) -> Any:  # -> FastAPI
    import orjson
    from fastapi import FastAPI, Request, Response
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from services.bigquery import errors, routes
    from services.bigquery.catalog import Catalog
    from services.bigquery.errors import BigQueryError
    from services.bigquery.jobs import Jobs
    from services.bigquery.ml import routes as ml_routes

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the first query after a (re)start would otherwise pay the engine's imports (before serving: a fixed
        # cost) and every file's footer (meanwhile, in the background: it grows with the files)
        await asyncio.to_thread(_warm_up, app.state.jobs, settings.project, False)
        threading.Thread(target=_warm_up, args=(app.state.jobs, settings.project, True), daemon=True).start()
        read_server = start_read_api(app.state.jobs, settings)
        try:
            yield
        finally:
            read_server.stop(grace=1.0).wait(2.0)

    app = FastAPI(title="hyp bigquery", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.settings = settings
    app.state.catalog = Catalog(settings.warehouse_dir, settings.dedup_window_s, settings.dedup_max_ids)
    app.state.jobs = Jobs(
        app.state.catalog, settings.export_dir, answer_running=True, result_tables=settings.query_result_tables
    )
    app.state.uploads = {}  # resumable upload sessions: id -> (project, job resource, data so far)

    def error(exc: BigQueryError) -> Response:
        return Response(orjson.dumps(exc.body()), status_code=exc.code, media_type="application/json")

    @app.exception_handler(BigQueryError)
    async def bigquery_error(request: Request, exc: BigQueryError) -> Response:
        return error(exc)

    @app.exception_handler(OSError)
    async def write_refused(request: Request, exc: OSError) -> Response:
        answer = errors.from_exception(exc)
        if answer.code == 500:
            raise exc  # any other failure stays the server's own 500
        log.error("write refused", extra={"fields": {"error": str(exc)}})
        return error(answer)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        reason = {404: "notFound", 405: "badRequest"}.get(exc.status_code, "invalid")
        message = f"Not found: URL {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return error(BigQueryError(exc.status_code, reason, message))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error(BigQueryError(400, "invalid", f"Invalid request: {exc.errors()[0].get('msg', '')}"))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(routes.router())
    app.include_router(ml_routes.router())  # BigQuery ML's models API (list/get/patch/delete)
    return app
