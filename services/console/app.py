"""The console's web app: the page, its static assets, the live stream, the SQL box and the actions.

The routes live in routes/ (one router per concern) and reach the settings, the collector and the
actions' HTTP client through deps.py; this module builds the app: its lifespan (collector, optional
Pub/Sub feeds, the HTTP client), the static mount, the routers, the cross-site guard (guard.py) in
front of every state-changing request, and one error shape: ``{"error": "..."}`` for a refused action
(upstream.ActionError) and for bad input (422, each problem named by its field).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from services.console import upstream
from services.console.collector import Collector
from services.console.guard import CrossSiteGuard
from services.console.live import LiveAnomalies
from services.console.routes import models, page, pubsub, scenarios, snapshot, sql, warehouse
from services.console.scenarios import LoadRuns
from services.console.settings import ConsoleSettings
from services.console.upstream import ActionError


def create_app(settings: ConsoleSettings) -> FastAPI:
    """The app; ``settings.subscribe`` decides whether it opens its own Pub/Sub subscriptions."""
    app = FastAPI(title="hyp-local console", lifespan=_lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=str(page.STATIC)), name="static")
    app.include_router(page.router)
    app.include_router(snapshot.router)
    app.include_router(sql.router)
    app.include_router(pubsub.router)
    app.include_router(warehouse.router)
    app.include_router(models.router)
    app.include_router(scenarios.router)
    app.add_exception_handler(ActionError, _action_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _bad_input)  # type: ignore[arg-type]
    app.add_middleware(CrossSiteGuard)
    return app


def _loadgen_env(settings: ConsoleSettings) -> dict[str, str]:
    """The load generator's environment: this one, with the console's emulator and project (never HYP_LOADGEN_*
    from the console's own environment deciding what the page asked for)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("HYP_LOADGEN_")}
    env["HYP_PROJECT"] = settings.project
    if settings.pubsub_emulator_host:
        env["PUBSUB_EMULATOR_HOST"] = settings.pubsub_emulator_host
    return env


async def _action_error(_: Request, exc: ActionError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status)


async def _bad_input(_: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one line naming each bad field (``body.topic: String should match pattern ...``)."""
    errors = [{k: v for k, v in e.items() if k != "ctx"} for e in exc.errors()]  # ctx may hold the exception itself
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors]
    return JSONResponse({"error": "; ".join(problems) or "bad input", "detail": errors}, status_code=422)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The collector (and the feeds, when subscribing) for as long as the app serves."""
    settings: ConsoleSettings = app.state.settings
    live = LiveAnomalies()
    feeds = None
    if settings.subscribe:
        from services.console.feeds import Feeds

        feeds = Feeds(settings, live)
        feeds.start()
    collector = Collector(settings, live, feeds_status=(lambda: feeds.status) if feeds else lambda: None)
    app.state.collector = collector
    app.state.http = upstream.client()
    app.state.load_runs = LoadRuns(_loadgen_env(settings))
    await collector.refresh()
    task = asyncio.create_task(collector.run(), name="console-refresh")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await collector.close()
        await app.state.http.aclose()
        await asyncio.to_thread(app.state.load_runs.close)
        if feeds is not None:
            await asyncio.to_thread(feeds.stop)
