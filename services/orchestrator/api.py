"""The orchestrator's HTTP API (FastAPI): /health, /metrics, /runs (GET, POST), /runs/{id}, /docs.

The routes live in routes/ (one router per concern) and reach the orchestrator and its sensors
through deps.py; this module builds the app: lifespan (the sensors' thread), routers, error shape.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.common.diskfull import disk_full, refusal
from services.orchestrator.routes import runs, service
from services.orchestrator.runner import Orchestrator
from services.orchestrator.sensors import Sensors

log = logging.getLogger(__name__)


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 naming the first bad field: ``{"error": "field: message", "field", "detail": [...]}``."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    field = _field(first.get("loc", ()))
    message = f"{field}: {str(first.get('msg', 'invalid')).removeprefix('Value error, ')}"
    detail = [{"field": _field(e.get("loc", ())), "message": e.get("msg")} for e in errors]
    return JSONResponse(status_code=422, content={"error": message, "field": field, "detail": detail})


async def _bad_run_params(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, runs.BadRunParams)
    return JSONResponse(status_code=422, content={"error": str(exc), "field": exc.field})


async def _write_refused(request: Request, exc: Exception) -> JSONResponse:
    """A run history write the disk refused: 503 naming the cause; any other failure stays a 500."""
    full = disk_full(exc)
    if full is None:
        raise exc
    log.error("write refused", extra={"fields": {"error": str(exc)}})
    return JSONResponse(
        status_code=503, content={"error": refusal("hyp orchestrator", full)}, headers={"Retry-After": "5"}
    )


def create_app(orchestrator: Orchestrator, *, sensors: Sensors | None = None, run_sensors: bool = True) -> FastAPI:
    """The API of ``orchestrator``; its sensors run in the app's lifespan unless ``run_sensors`` is false."""
    sensors = sensors or Sensors(orchestrator)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_sensors:
            sensors.start()
        yield
        orchestrator.stop(timeout=10.0)
        sensors.join()

    app = FastAPI(
        title="hyp orchestrator",
        description="Retrain on new data, drift or demand; promote only a better model (Vertex AI Pipelines, locally).",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.orchestrator = orchestrator
    app.state.sensors = sensors
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(runs.BadRunParams, _bad_run_params)
    app.add_exception_handler(OSError, _write_refused)
    app.add_exception_handler(sqlite3.Error, _write_refused)
    app.include_router(service.router)
    app.include_router(runs.router)
    return app
