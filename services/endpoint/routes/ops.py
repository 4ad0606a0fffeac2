"""Health (``AIP_HEALTH_ROUTE``, ``/health``, ``/ping``) and Prometheus ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.endpoint.deps import PredictorDep
from services.endpoint.responses import JSON, dumps


async def health(predictor: PredictorDep) -> Response:
    model, settings = predictor.holder.current, predictor.settings
    if model is None:
        body = {"status": "loading", "model": settings.model_uri, "error": predictor.holder.last_error}
        return Response(dumps(body), status_code=503, media_type=JSON)
    body = {"status": "ok", "model": model.name, "version": model.version, "alias": settings.model_alias}
    return Response(dumps(body), media_type=JSON, headers={"X-Model-Version": model.version})


async def prometheus(predictor: PredictorDep) -> Response:
    return Response(generate_latest(predictor.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def build_router(health_route: str) -> APIRouter:
    """Health at ``health_route`` (Vertex tells a container where it is checked) and the usual names."""
    router = APIRouter(tags=["ops"])
    for path in dict.fromkeys([health_route, "/health", "/ping"]):
        router.add_api_route(path, health, methods=["GET"], summary="Health: 200 once a model is loaded")
    router.add_api_route("/metrics", prometheus, methods=["GET"], summary="Prometheus metrics")
    return router
