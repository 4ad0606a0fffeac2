"""What the API's routes depend on (FastAPI ``Depends``): the orchestrator and its sensors, held by the app
(services/common/deps.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.common.deps import from_state
from services.orchestrator.runner import Orchestrator
from services.orchestrator.sensors import Sensors

OrchestratorDep = Annotated[Orchestrator, Depends(from_state("orchestrator"))]
SensorsDep = Annotated[Sensors, Depends(from_state("sensors"))]
