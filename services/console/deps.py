"""What the console's routes depend on (FastAPI ``Depends``): its settings and the collector (the snapshot
collector the app's lifespan started), held by the app (services/common/deps.py)."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends

from services.common.deps import from_state
from services.console.collector import Collector
from services.console.scenarios import LoadRuns
from services.console.settings import ConsoleSettings

SettingsDep = Annotated[ConsoleSettings, Depends(from_state("settings"))]
CollectorDep = Annotated[Collector, Depends(from_state("collector"))]
HttpDep = Annotated[httpx.AsyncClient, Depends(from_state("http"))]
LoadRunsDep = Annotated[LoadRuns, Depends(from_state("load_runs"))]
