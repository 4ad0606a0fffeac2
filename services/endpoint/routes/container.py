"""The custom-container predict route (``AIP_PREDICT_ROUTE``) and MLflow's ``/invocations``.

Any body shape MLflow's scoring server takes; answers ``{"predictions": [...]}`` and MLflow's error
body (``{"error_code", "message"}``).
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter
from fastapi.responses import Response

from services.endpoint import schemas
from services.endpoint.body import RequestBody
from services.endpoint.deps import BodyDep, PredictorDep
from services.endpoint.instances import InputError, loads, parse_any
from services.endpoint.predictor import Predictor
from services.endpoint.responses import JsonBytes, mlflow_error, with_predictions

log = logging.getLogger(__name__)

INVOCATIONS = "/invocations"


async def answer(predictor: Predictor, body: RequestBody, route: str, *, vertex: bool) -> Response:
    """Score any /invocations shape; ``vertex`` picks the Vertex prediction shape, ``route`` the metric label."""
    start = time.perf_counter()
    status = 200
    try:
        payload = loads(await body.read())
        model = predictor.served()
        batch = parse_any(payload, predictor.settings.max_instances, model.features)
        predictions = await predictor.score(model, batch, vertex=vertex)
        return JsonBytes(with_predictions(predictions), headers=predictor.answers(model).headers)
    except InputError as exc:
        status = exc.status
        return mlflow_error(exc.status, str(exc))
    except Exception as exc:
        status = 500
        log.exception("prediction failed")
        return mlflow_error(500, f"prediction failed: {type(exc).__name__}: {exc}")
    finally:
        predictor.observe(route, status, start)


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
