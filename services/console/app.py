"""The console's web app: the page, its static assets, the live stream and the SQL box."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from services.console.collector import Collector
from services.console.live import LiveAnomalies
from services.console.settings import ConsoleSettings

log = logging.getLogger(__name__)
STATIC = files("services.console") / "static"
SQL_TIMEOUT_S = 20.0


class SqlRequest(BaseModel):
    sql: str = Field(min_length=1, max_length=20_000)


def create_app(settings: ConsoleSettings) -> FastAPI:
    """The app; ``settings.subscribe`` decides whether it opens its own Pub/Sub subscriptions."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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

    app = FastAPI(title="hyp-local console", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/snapshot")
    async def snapshot(request: Request) -> JSONResponse:
        """The snapshot, refreshed first when older than ``refresh_s``."""
        return JSONResponse(await request.app.state.collector.fresh())

    @app.get("/api/stream")
    async def stream(request: Request) -> StreamingResponse:
        """Server-sent events: one ``snapshot`` event per refresh (every ``refresh_s`` while a page is open)."""
        collector: Collector = request.app.state.collector

        async def events() -> AsyncIterator[str]:
            seen = -1
            yield "retry: 2000\n\n"
            with collector.watching():  # the refresh loop runs at the watched cadence while this is open
                while not await request.is_disconnected():
                    if collector.version != seen:
                        seen = collector.version
                        yield f"event: snapshot\ndata: {json.dumps(collector.snapshot, default=str)}\n\n"
                    async with collector.changed:
                        try:
                            await asyncio.wait_for(collector.changed.wait(), timeout=15)
                        except TimeoutError:
                            yield ": keep-alive\n\n"

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    @app.post("/api/sql")
    async def sql(body: SqlRequest) -> JSONResponse:
        """Read-only DuckDB SQL over the warehouse; bad or writing SQL gets a 400 naming the problem."""
        from services.warehouse.query import query
        from services.warehouse.tables import WarehouseError

        try:
            table = await asyncio.wait_for(
                asyncio.to_thread(query, settings.warehouse_dir, body.sql, read_only=True), SQL_TIMEOUT_S
            )
        except WarehouseError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except TimeoutError:
            return JSONResponse({"error": f"sql: no answer within {SQL_TIMEOUT_S:.0f} s"}, status_code=408)
        limit = settings.sql_max_rows
        rows = table.slice(0, limit).to_pylist()
        return JSONResponse(
            {
                "columns": table.column_names,
                "rows": [[_plain(r[c]) for c in table.column_names] for r in rows],
                "total_rows": table.num_rows,
                "truncated": table.num_rows > limit,
            }
        )

    return app


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value != value:
        return None
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)
