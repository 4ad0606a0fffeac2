"""The orchestrator's HTTP API (FastAPI): /health, /metrics, /runs (GET, POST), /runs/{id}, /docs."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.orchestrator.params import RunParams
from services.orchestrator.runner import Orchestrator
from services.orchestrator.sensors import Sensors


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def create_app(orchestrator: Orchestrator, *, sensors: Sensors | None = None, run_sensors: bool = True) -> FastAPI:
    sensors = sensors or Sensors(orchestrator)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if run_sensors:
            sensors.start()
        yield
        orchestrator.stop(timeout=10.0)
        sensors.join()

    app = FastAPI(
        title="hyp orchestrator",
        description="Retrain on new data, drift or demand; promote only a better model (Vertex AI Pipelines, locally).",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.orchestrator = orchestrator
    app.state.sensors = sensors

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        field = _field(first.get("loc", ()))
        message = f"{field}: {str(first.get('msg', 'invalid')).removeprefix('Value error, ')}"
        detail = [{"field": _field(e.get("loc", ())), "message": e.get("msg")} for e in errors]
        return JSONResponse(status_code=422, content={"error": message, "field": field, "detail": detail})

    @app.get("/health")
    def health() -> dict[str, Any]:
        active = orchestrator.active
        return {
            "status": "ok",
            "run_in_progress": active["id"] if active else None,
            "sensors": sensors.last,
            "interrupted_on_start": orchestrator.interrupted_on_start,
        }

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(orchestrator.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/runs")
    def list_runs(limit: int = 50, status: str | None = None) -> dict[str, Any]:
        if not 1 <= limit <= 1000:
            raise HTTPException(422, detail="limit: must be between 1 and 1000")
        return {"runs": orchestrator.history.list(status=status, limit=limit)}

    @app.get("/runs/{run_id}")
    def get_run(run_id: str) -> dict[str, Any]:
        record = orchestrator.history.get(run_id)
        if record is None:
            raise HTTPException(404, detail=f"run_id: no run {run_id!r}")
        return record

    @app.post("/runs", status_code=202)
    def start_run(params: RunParams | None = None, response: Response = None) -> dict[str, Any]:  # type: ignore[assignment]
        params = params or RunParams()
        try:
            resolved = orchestrator.resolve(params)
        except ValueError as exc:
            field = str(exc).split(":", 1)[0]
            return JSONResponse(status_code=422, content={"error": str(exc), "field": field})  # type: ignore[return-value]
        record, created = orchestrator.trigger({"kind": "manual", "reason": params.reason or "POST /runs"}, resolved)
        if not created and response is not None:
            response.status_code = 200
        return {"run": record, "created": created}

    return app
