"""The console's web app: the page, its static assets, the live stream and the SQL box.

The routes live in routes/ (one router per concern) and reach the settings and the collector
through deps.py; this module builds the app: its lifespan (collector, optional Pub/Sub feeds),
the static mount and the routers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.console.collector import Collector
from services.console.live import LiveAnomalies
from services.console.routes import page, snapshot, sql
from services.console.settings import ConsoleSettings


def create_app(settings: ConsoleSettings) -> FastAPI:
    """The app; ``settings.subscribe`` decides whether it opens its own Pub/Sub subscriptions."""
    app = FastAPI(title="hyp-local console", lifespan=_lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=str(page.STATIC)), name="static")
    app.include_router(page.router)
    app.include_router(snapshot.router)
    app.include_router(sql.router)
    return app


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
    await collector.refresh()
    task = asyncio.create_task(collector.run(), name="console-refresh")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await collector.close()
        if feeds is not None:
            await asyncio.to_thread(feeds.stop)
