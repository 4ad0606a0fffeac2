"""What the API's routes depend on (FastAPI ``Depends``): the orchestrator and its sensors, held by the app.

``async def``, so FastAPI resolves them on the event loop instead of sending each to a worker thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.orchestrator.runner import Orchestrator
from services.orchestrator.sensors import Sensors


async def get_orchestrator(request: Request) -> Orchestrator:
    orchestrator: Orchestrator = request.app.state.orchestrator
    return orchestrator


async def get_sensors(request: Request) -> Sensors:
    sensors: Sensors = request.app.state.sensors
    return sensors


OrchestratorDep = Annotated[Orchestrator, Depends(get_orchestrator)]
SensorsDep = Annotated[Sensors, Depends(get_sensors)]
