"""The custom-container predict route (``AIP_PREDICT_ROUTE``) and MLflow's ``/invocations``.

Any body shape MLflow's scoring server takes; answers ``{"predictions": [...]}`` and MLflow's error
body (``{"error_code", "message"}``).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from services.endpoint import schemas
from services.endpoint.body import RequestBody
from services.endpoint.deps import BodyDep, PredictorDep
from services.endpoint.instances import loads, parse_any
from services.endpoint.predictor import Predictor
from services.endpoint.responses import JsonBytes, mlflow_error, with_predictions
from services.endpoint.routes.guard import guarded

INVOCATIONS = "/invocations"


async def answer(predictor: Predictor, body: RequestBody, route: str, *, vertex: bool) -> Response:
    """Score any /invocations shape; ``vertex`` picks the Vertex prediction shape, ``route`` the metric label."""
    return await guarded(predictor, route, mlflow_error, scored, predictor, body, vertex)


async def scored(predictor: Predictor, body: RequestBody, vertex: bool) -> Response:
    payload = loads(await body.read())
    model = predictor.served()
    batch = parse_any(payload, predictor.settings.max_instances, model.features)
    predictions = await predictor.score(model, batch, vertex=vertex)
    return JsonBytes(with_predictions(predictions), headers=predictor.answers(model).headers)


async def container_predict(predictor: PredictorDep, body: BodyDep) -> Response:
    return await answer(predictor, body, "container", vertex=True)


async def invocations(predictor: PredictorDep, body: BodyDep) -> Response:
    """dataframe_split, dataframe_records, instances or inputs -> {"predictions": [...]}."""
    return await answer(predictor, body, "invocations", vertex=False)


def build_router(predict_route: str) -> APIRouter:
    """The routes, the container's at ``predict_route`` (Vertex tells a container where to answer)."""
    router = APIRouter()
    router.add_api_route(
        predict_route,
        container_predict,
        methods=["POST"],
        summary="Custom-container predict route (AIP_PREDICT_ROUTE)",
        openapi_extra=schemas.body(schemas.ANY_REQUEST),
        responses=schemas.RAW_RESPONSES,
        tags=["container"],
    )
    router.add_api_route(
        INVOCATIONS,
        invocations,
        methods=["POST"],
        summary="MLflow scoring server's /invocations",
        openapi_extra=schemas.body(schemas.ANY_REQUEST),
        responses=schemas.RAW_RESPONSES,
        tags=["mlflow"],
    )
    return router
