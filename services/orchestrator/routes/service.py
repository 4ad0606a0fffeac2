"""The service's own state: /health (the run in progress, the sensors' last readings) and /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.orchestrator.deps import OrchestratorDep, SensorsDep

router = APIRouter()


@router.get("/health")
def health(orchestrator: OrchestratorDep, sensors: SensorsDep) -> dict[str, Any]:
    active = orchestrator.active
    return {
        "status": "ok",
        "run_in_progress": active["id"] if active else None,
        "sensors": sensors.last,
        "interrupted_on_start": orchestrator.interrupted_on_start,
    }


@router.get("/metrics")
def metrics(orchestrator: OrchestratorDep) -> Response:
    return Response(generate_latest(orchestrator.metrics.registry), media_type=CONTENT_TYPE_LATEST)
