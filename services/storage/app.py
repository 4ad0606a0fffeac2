"""The `hyp storage` app: the routers, the JSON API's error shape for every failure, ``GET /health``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from services.common.diskfull import disk_full
from services.storage import errors
from services.storage.errors import ApiError

if TYPE_CHECKING:
    from services.storage.settings import StorageSettings

log = logging.getLogger(__name__)


def create_app(settings: StorageSettings) -> FastAPI:
    from services.storage.notifications import Publisher, listener
    from services.storage.routes import buckets, notifications, objects, uploads
    from services.storage.store import Store
    from services.storage.uploads import Sessions

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = store = Store(settings.data_dir, settings.default_location).open()
        app.state.sessions = Sessions(store)
        app.state.publisher = publisher = Publisher(settings.pubsub_emulator_host)
        store.listener = listener(store.notifications, publisher, f"http://{settings.host}:{settings.port}")
        try:
            yield
        finally:
            publisher.close()

    app = FastAPI(title="hyp storage", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.include_router(buckets.router)
    app.include_router(objects.router)
    app.include_router(uploads.router)
    app.include_router(notifications.router)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        if exc.code == 304:  # no body allowed
            return Response(status_code=304)
        return JSONResponse(exc.body(), status_code=exc.code)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        reason = {404: "notFound", 405: "methodNotAllowed"}.get(exc.status_code, "invalid")
        return JSONResponse(ApiError(exc.status_code, reason, str(exc.detail)).body(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(ApiError(400, "invalid", str(exc.errors()[0].get("msg"))).body(), status_code=400)

    @app.exception_handler(OSError)
    async def write_refused(_: Request, exc: OSError) -> JSONResponse:
        full = disk_full(exc)
        if full is None:
            raise exc  # any other failure stays the server's own 500
        log.error("write refused", extra={"fields": {"error": str(full)}})
        error = errors.disk_full(full)
        return JSONResponse(error.body(), status_code=error.code, headers={"Retry-After": "5"})

    return app
