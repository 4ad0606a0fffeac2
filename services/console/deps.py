"""What the console's routes depend on (FastAPI ``Depends``): its settings and the collector, held by the app.

``async def``, so FastAPI resolves them on the event loop instead of sending each to a worker thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.console.collector import Collector
from services.console.settings import ConsoleSettings


async def app_settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


async def collector(request: Request) -> Collector:
    """The snapshot collector the app's lifespan started."""
    found: Collector = request.app.state.collector
    return found


SettingsDep = Annotated[ConsoleSettings, Depends(app_settings)]
CollectorDep = Annotated[Collector, Depends(collector)]
