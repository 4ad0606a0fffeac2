"""Vertex AI's online-prediction REST surface: predict, rawPredict, the Endpoint resource and its list.

Answers and errors are Google's (``{"error": {"code", "message", "status"}}``), which the Vertex SDK
turns into google.api_core exceptions.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.common import names
from services.endpoint import schemas
from services.endpoint.body import RequestBody
from services.endpoint.deps import BodyDep, PredictorDep
from services.endpoint.instances import InputError, loads, parse_any, parse_vertex
from services.endpoint.predictor import Predictor
from services.endpoint.resources.errors import ApiError, invalid
from services.endpoint.resources.registry import parse_filter
from services.endpoint.resources.service import VertexResources
from services.endpoint.responses import JSON, JsonBytes, dumps, google_error, raw_headers, with_predictions
from services.endpoint.routes.guard import guarded
from services.endpoint.routes.resources import ResourcesDep

# /v1/projects/{project}/locations/{location}/endpoints/{endpoint}, and the collection above it
ENDPOINT_PATH = "/v1/" + names.endpoint("{project}", "{location}", "{endpoint}")
ENDPOINTS_PATH = ENDPOINT_PATH.rsplit("/", 1)[0]

router = APIRouter(tags=["vertex"])


async def answer(
    predictor: Predictor,
    body: RequestBody,
    verb: str,
    project: str,
    location: str,
    endpoint: str,
    resources: VertexResources | None = None,
) -> Response:
    """One ``:predict`` (Vertex's request and response shape) or ``:rawPredict`` (any shape in, the
    model server's answer out) call, counted under ``verb``. Endpoints other than the champion's
    (``settings.endpoint_id``) are those created through the API (``resources``)."""
    where = (project, location, endpoint)
    if resources is not None and not resources.is_champion_endpoint(*where):
        return await guarded(predictor, verb, google_error, deployed_answer, resources, body, verb, where)
    return await guarded(predictor, verb, google_error, champion_answer, predictor, body, verb, where)


async def champion_answer(predictor: Predictor, body: RequestBody, verb: str, where: tuple[str, str, str]) -> Response:
    """Endpoint ``1``: the registry alias's model, instances of named features."""
    raw = verb == "rawPredict"
    predictor.check_resource(*where)
    payload = loads(await body.read())
    model = predictor.served()
    parse = parse_any if raw else parse_vertex
    batch = parse(payload, predictor.settings.max_instances, model.features)
    predictions = await predictor.score(model, batch, vertex=True)
    answers = predictor.answers(model)
    rest = b"}" if raw else answers.vertex_tail
    return JsonBytes(with_predictions(predictions, rest), headers=answers.vertex_headers)


async def deployed_answer(
    resources: VertexResources, body: RequestBody, verb: str, where: tuple[str, str, str]
) -> Response:
    """An endpoint created through the API: one deployed model drawn by the traffic split."""
    target = resources.endpoint(*where)
    payload = loads(await body.read())
    if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
        raise invalid('instances: missing; send {"instances": [...]}')
    instances = payload["instances"]
    if len(instances) > resources.settings.max_instances:
        raise invalid(f"instances: {len(instances)} is over the limit of {resources.settings.max_instances}")
    deployed = target.pick(resources.endpoints.rng)
    predictions = await deployed.predict_json(instances)
    rest = b"}" if verb == "rawPredict" else deployed.tail
    headers = raw_headers({"X-Vertex-AI-Endpoint-Id": where[2], "X-Vertex-AI-Deployed-Model-Id": deployed.id})
    return JsonBytes(with_predictions(predictions, rest), headers=headers)


@router.post(
    ENDPOINT_PATH + ":predict",
    summary="Vertex AI predict",
    openapi_extra=schemas.body(schemas.VERTEX_REQUEST),
    responses=schemas.PREDICT_RESPONSES,
)
async def predict(
    project: str, location: str, endpoint: str, predictor: PredictorDep, body: BodyDep, resources: ResourcesDep
) -> Response:
    """`{"instances": [...], "parameters": {...}}` -> predictions and the model version that answered."""
    return await answer(predictor, body, "predict", project, location, endpoint, resources)


@router.post(
    ENDPOINT_PATH + ":rawPredict",
    summary="Vertex AI rawPredict",
    openapi_extra=schemas.body(schemas.ANY_REQUEST),
    responses=schemas.RAW_RESPONSES,
)
async def raw_predict(
    project: str, location: str, endpoint: str, predictor: PredictorDep, body: BodyDep, resources: ResourcesDep
) -> Response:
    """The body goes to the model server as is (any /invocations shape); its answer comes back as is."""
    return await answer(predictor, body, "rawPredict", project, location, endpoint, resources)


@router.get(ENDPOINT_PATH, summary="Get the Endpoint resource")
async def get_endpoint(
    project: str, location: str, endpoint: str, predictor: PredictorDep, resources: ResourcesDep
) -> Response:
    """What `aiplatform.Endpoint(name)` fetches first: name, display name, deployed models."""
    try:
        if not resources.is_champion_endpoint(project, location, endpoint):
            return Response(dumps(resources.endpoint(project, location, endpoint).resource()), media_type=JSON)
        predictor.check_resource(project, location, endpoint)
    except ApiError as exc:
        return exc.response()
    except InputError as exc:
        return google_error(exc.status, str(exc))
    return Response(dumps(predictor.endpoint_resource()), media_type=JSON)


@router.get(ENDPOINTS_PATH, summary="List endpoints")
async def list_endpoints(
    project: str, location: str, request: Request, predictor: PredictorDep, resources: ResourcesDep
) -> Response:
    """Endpoint ``1`` (the champion's) and those created through the API, filtered as Vertex filters."""
    settings = predictor.settings
    if (project, location) != (settings.project, settings.location):
        return Response(dumps({}), media_type=JSON)
    try:
        match = parse_filter(request.query_params.get("filter", ""))
    except ApiError as exc:
        return exc.response()
    every = [predictor.endpoint_resource()] + [e.resource() for e in resources.endpoints.all()]
    return Response(dumps({"endpoints": [e for e in every if match(e)]}), media_type=JSON)
