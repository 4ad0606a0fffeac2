"""Vertex AI's resource methods (REST v1): models, endpoints, deploy/undeploy and operations.

Each method runs its blocking work (the MLflow registry, artifact downloads, model loading) in a
worker thread and answers Vertex's JSON: a resource, a list, or a long-running Operation. Errors are
Google's (``{"error": {"code", "message", "status"}}``). ``:predict`` on these endpoints is answered
by :mod:`services.endpoint.routes.vertex`, beside endpoint ``1``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.common.deps import from_state
from services.common.diskfull import disk_full, refusal
from services.endpoint.resources.errors import ApiError, invalid
from services.endpoint.resources.service import VertexResources
from services.endpoint.responses import JSON, dumps

log = logging.getLogger(__name__)

ResourcesDep = Annotated[VertexResources, Depends(from_state("vertex"))]
LOCATION = "/v1/projects/{project}/locations/{location}"

router = APIRouter(tags=["vertex resources"])


async def not_champion(project: str, location: str, endpoint: str, resources: ResourcesDep) -> None:
    """Endpoint ``1`` serves ``NAME@ALIAS`` from the registry: it changes when the alias moves, not by deploys,
    updates or a delete (FAILED_PRECONDITION, through the app's ApiError handler)."""
    if resources.is_champion_endpoint(project, location, endpoint):
        raise ApiError(
            "FAILED_PRECONDITION",
            f"Endpoint `{resources.endpoints.name(endpoint)}` serves {resources.settings.model_uri} and follows "
            "that alias; move the alias in the registry (hyp models promote), or create another endpoint to "
            "deploy on.",
        )


async def api_error(request: Request, exc: Exception) -> Response:
    """The app's handler of an ApiError raised outside a route's own try (a dependency): Google's error."""
    assert isinstance(exc, ApiError)
    return exc.response()


NOT_CHAMPION = Depends(not_champion)


async def run(resources: VertexResources, project: str, location: str, work: Callable[[], Any]) -> Response:
    """``work()`` in a thread after the location check; its dict as JSON, an ApiError as Google's error."""
    try:
        resources.check_location(project, location)
        result = await asyncio.to_thread(work)
    except ApiError as exc:
        return exc.response()
    except Exception as exc:
        full = disk_full(exc)
        if full is not None:  # Vertex's retryable error, naming the cause
            log.error("resource method failed", extra={"fields": {"error": str(full)}})
            return ApiError("UNAVAILABLE", refusal("hyp endpoint", full)).response()
        log.exception("resource method failed")
        return ApiError("INTERNAL", f"{type(exc).__name__}: {exc}").response()
    return Response(dumps(result), media_type=JSON)


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise invalid(f"body: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise invalid("body: expected a JSON object")
    return body


async def with_body(request: Request, resources: VertexResources, project: str, location: str, work: Any) -> Response:
    try:
        body = await json_body(request)
    except ApiError as exc:
        return exc.response()
    return await run(resources, project, location, lambda: work(body))


@router.post(LOCATION + "/models:upload", summary="Upload a model (a new MLflow registered model version)")
async def upload_model(project: str, location: str, request: Request, resources: ResourcesDep) -> Response:
    return await with_body(request, resources, project, location, resources.upload)


@router.get(LOCATION + "/models", summary="List models (their default versions)")
async def list_models(project: str, location: str, request: Request, resources: ResourcesDep) -> Response:
    flt = request.query_params.get("filter", "")
    return await run(resources, project, location, lambda: {"models": resources.registry.list_models(flt)})


@router.get(LOCATION + "/models/{model}:listVersions", summary="List a model's versions")
async def list_versions(project: str, location: str, model: str, resources: ResourcesDep) -> Response:
    return await run(resources, project, location, lambda: {"models": resources.registry.list_versions(model)})


@router.post(LOCATION + "/models/{model}:mergeVersionAliases", summary="Add (alias) or remove (-alias) version aliases")
async def merge_version_aliases(
    project: str, location: str, model: str, request: Request, resources: ResourcesDep
) -> Response:
    def merge(body: dict[str, Any]) -> dict[str, Any]:
        return resources.registry.merge_aliases(model, list(body.get("versionAliases") or []))

    return await with_body(request, resources, project, location, merge)


@router.delete(LOCATION + "/models/{model}:deleteVersion", summary="Delete one version (MODEL@VERSION)")
async def delete_version(project: str, location: str, model: str, resources: ResourcesDep) -> Response:
    return await run(resources, project, location, lambda: resources.delete_version(model))


@router.get(LOCATION + "/models/{model}", summary="Get a model (MODEL, MODEL@VERSION or MODEL@ALIAS)")
async def get_model(project: str, location: str, model: str, resources: ResourcesDep) -> Response:
    return await run(resources, project, location, lambda: resources.get_model(model))


@router.delete(LOCATION + "/models/{model}", summary="Delete a model and all its versions")
async def delete_model(project: str, location: str, model: str, resources: ResourcesDep) -> Response:
    return await run(resources, project, location, lambda: resources.delete_model(model))


@router.post(LOCATION + "/endpoints", summary="Create an endpoint")
async def create_endpoint(project: str, location: str, request: Request, resources: ResourcesDep) -> Response:
    endpoint_id = request.query_params.get("endpointId") or None
    return await with_body(request, resources, project, location, lambda b: resources.create_endpoint(b, endpoint_id))


@router.patch(
    LOCATION + "/endpoints/{endpoint}",
    summary="Update an endpoint (display name, labels, traffic split)",
    dependencies=[NOT_CHAMPION],
)
async def update_endpoint(
    project: str, location: str, endpoint: str, request: Request, resources: ResourcesDep
) -> Response:
    mask = request.query_params.get("updateMask", "")
    return await with_body(
        request, resources, project, location, lambda b: resources.update_endpoint(endpoint, b, mask)
    )


@router.delete(
    LOCATION + "/endpoints/{endpoint}", summary="Delete an endpoint with no deployed model", dependencies=[NOT_CHAMPION]
)
async def delete_endpoint(project: str, location: str, endpoint: str, resources: ResourcesDep) -> Response:
    return await run(resources, project, location, lambda: resources.delete_endpoint(endpoint))


@router.post(
    LOCATION + "/endpoints/{endpoint}:deployModel",
    summary="Deploy a model version on an endpoint",
    dependencies=[NOT_CHAMPION],
)
async def deploy_model(
    project: str, location: str, endpoint: str, request: Request, resources: ResourcesDep
) -> Response:
    return await with_body(request, resources, project, location, lambda b: resources.deploy(endpoint, b))


@router.post(
    LOCATION + "/endpoints/{endpoint}:undeployModel", summary="Undeploy a deployed model", dependencies=[NOT_CHAMPION]
)
async def undeploy_model(
    project: str, location: str, endpoint: str, request: Request, resources: ResourcesDep
) -> Response:
    return await with_body(request, resources, project, location, lambda b: resources.undeploy(endpoint, b))


@router.get(LOCATION + "/operations/{operation}", summary="Get a long-running operation")
async def get_operation(
    project: str, location: str, operation: str, request: Request, resources: ResourcesDep
) -> Response:
    name = request.url.path.removeprefix("/v1/")
    return await run(resources, project, location, lambda: resources.operations.get(name))
