"""What the page shows: the snapshot on demand, and as a stream of server-sent events while the page is open."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from services.console.collector import Collector
from services.console.deps import CollectorDep

router = APIRouter(prefix="/api")

KEEP_ALIVE_S = 15.0  # a comment line this often keeps proxies from closing a quiet stream


@router.get("/snapshot")
async def snapshot(collector: CollectorDep) -> JSONResponse:
    """The snapshot, refreshed first when older than ``refresh_s``."""
    return JSONResponse(await collector.fresh())


@router.get("/stream")
async def stream(request: Request, collector: CollectorDep) -> StreamingResponse:
    """Server-sent events: one ``snapshot`` event per refresh (every ``refresh_s`` while a page is open)."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(request, collector), media_type="text/event-stream", headers=headers)


async def _events(request: Request, collector: Collector) -> AsyncIterator[str]:
    seen = -1
    yield "retry: 2000\n\n"
    with collector.watching():  # the refresh loop runs at the watched cadence while this is open
        while not await request.is_disconnected():
            if collector.version != seen:
                seen = collector.version
                yield f"event: snapshot\ndata: {json.dumps(collector.snapshot, default=str)}\n\n"
            async with collector.changed:
                try:
                    await asyncio.wait_for(collector.changed.wait(), timeout=KEEP_ALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
