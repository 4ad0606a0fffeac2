"""Vertex AI's online-prediction REST surface: predict, rawPredict, the Endpoint resource and its list.

Answers and errors are Google's (``{"error": {"code", "message", "status"}}``), which the Vertex SDK
turns into google.api_core exceptions.
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter
from fastapi.responses import Response

from services.common import names
from services.endpoint import schemas
from services.endpoint.body import RequestBody
from services.endpoint.deps import BodyDep, PredictorDep
from services.endpoint.instances import InputError, loads, parse_any, parse_vertex
from services.endpoint.predictor import Predictor
from services.endpoint.responses import JSON, JsonBytes, dumps, google_error, with_predictions

log = logging.getLogger(__name__)

# /v1/projects/{project}/locations/{location}/endpoints/{endpoint}, and the collection above it
ENDPOINT_PATH = "/v1/" + names.endpoint("{project}", "{location}", "{endpoint}")
ENDPOINTS_PATH = ENDPOINT_PATH.rsplit("/", 1)[0]

router = APIRouter(tags=["vertex"])


async def answer(
    predictor: Predictor, body: RequestBody, verb: str, project: str, location: str, endpoint: str
) -> Response:
    """One ``:predict`` (Vertex's request and response shape) or ``:rawPredict`` (any shape in, the
    model server's answer out) call, counted under ``verb``."""
    start = time.perf_counter()
    status = 200
    raw = verb == "rawPredict"
    try:
        predictor.check_resource(project, location, endpoint)
        payload = loads(await body.read())
        model = predictor.served()
        parse = parse_any if raw else parse_vertex
        batch = parse(payload, predictor.settings.max_instances, model.features)
        predictions = await predictor.score(model, batch, vertex=True)
        answers = predictor.answers(model)
        rest = b"}" if raw else answers.vertex_tail
        return JsonBytes(with_predictions(predictions, rest), headers=answers.vertex_headers)
    except InputError as exc:
        status = exc.status
        return google_error(exc.status, str(exc))
    except Exception as exc:
        status = 500
        log.exception("prediction failed")
        return google_error(500, f"prediction failed: {type(exc).__name__}: {exc}")
    finally:
        predictor.observe(verb, status, start)


@router.post(
    ENDPOINT_PATH + ":predict",
    summary="Vertex AI predict",
    openapi_extra=schemas.body(schemas.VERTEX_REQUEST),
    responses=schemas.PREDICT_RESPONSES,
)
async def predict(project: str, location: str, endpoint: str, predictor: PredictorDep, body: BodyDep) -> Response:
    """`{"instances": [...], "parameters": {...}}` -> predictions and the model version that answered."""
    return await answer(predictor, body, "predict", project, location, endpoint)


@router.post(
    ENDPOINT_PATH + ":rawPredict",
    summary="Vertex AI rawPredict",
    openapi_extra=schemas.body(schemas.ANY_REQUEST),
    responses=schemas.RAW_RESPONSES,
)
async def raw_predict(project: str, location: str, endpoint: str, predictor: PredictorDep, body: BodyDep) -> Response:
    """The body goes to the model server as is (any /invocations shape); its answer comes back as is."""
    return await answer(predictor, body, "rawPredict", project, location, endpoint)


@router.get(ENDPOINT_PATH, summary="Get the Endpoint resource")
async def get_endpoint(project: str, location: str, endpoint: str, predictor: PredictorDep) -> Response:
    """What `aiplatform.Endpoint(name)` fetches first: name, display name, deployed models."""
    try:
        predictor.check_resource(project, location, endpoint)
    except InputError as exc:
        return google_error(exc.status, str(exc))
    return Response(dumps(predictor.endpoint_resource()), media_type=JSON)


@router.get(ENDPOINTS_PATH, summary="List endpoints")
async def list_endpoints(project: str, location: str, predictor: PredictorDep) -> Response:
    settings = predictor.settings
    if (project, location) != (settings.project, settings.location):
        return Response(dumps({}), media_type=JSON)
    return Response(dumps({"endpoints": [predictor.endpoint_resource()]}), media_type=JSON)
