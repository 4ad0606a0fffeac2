"""Runs: list them, read one, start one (or join the run in progress)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response

from services.orchestrator.deps import OrchestratorDep
from services.orchestrator.params import RunParams

router = APIRouter(prefix="/runs")


class BadRunParams(ValueError):
    """Parameters that validate alone but not against this orchestrator (an unknown candidate);
    the message starts with the field's name. Answered 422 by the app's handler."""

    @property
    def field(self) -> str:
        return str(self).split(":", 1)[0]


@router.get("")
def list_runs(orchestrator: OrchestratorDep, limit: int = 50, status: str | None = None) -> dict[str, Any]:
    if not 1 <= limit <= 1000:
        raise HTTPException(422, detail="limit: must be between 1 and 1000")
    return {"runs": orchestrator.history.list(status=status, limit=limit)}


@router.get("/{run_id}")
def get_run(orchestrator: OrchestratorDep, run_id: str) -> dict[str, Any]:
    record = orchestrator.history.get(run_id)
    if record is None:
        raise HTTPException(404, detail=f"run_id: no run {run_id!r}")
    return record


@router.post("", status_code=202)
def start_run(orchestrator: OrchestratorDep, response: Response, params: RunParams | None = None) -> dict[str, Any]:
    # 202 with the new run; 200 with the run in progress when there is one (the trigger joins it)
    params = params or RunParams()
    try:
        resolved = orchestrator.resolve(params)
    except ValueError as exc:
        raise BadRunParams(str(exc)) from exc
    record, created = orchestrator.trigger({"kind": "manual", "reason": params.reason or "POST /runs"}, resolved)
    if not created:
        response.status_code = 200
    return {"run": record, "created": created}
