"""Vertex AI's training pipelines (REST v1): what ``aiplatform.CustomTrainingJob.run`` calls.

``create`` answers the TrainingPipeline at once (running); the SDK polls ``get`` until it has ended. The
work is :mod:`services.endpoint.resources.training`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.endpoint.routes.resources import LOCATION, ResourcesDep, run, with_body

PIPELINES = LOCATION + "/trainingPipelines"

router = APIRouter(tags=["vertex resources"])  # management methods, like routes/resources.py


@router.post(PIPELINES, summary="Create a training pipeline (CustomTrainingJob: the script run as a local process)")
async def create_pipeline(project: str, location: str, request: Request, resources: ResourcesDep) -> Response:
    return await with_body(request, resources, project, location, resources.training.create)


@router.get(PIPELINES, summary="List training pipelines")
async def list_pipelines(project: str, location: str, resources: ResourcesDep) -> Response:
    return await run(resources, project, location, lambda: {"trainingPipelines": resources.training.all()})


@router.get(PIPELINES + "/{pipeline}", summary="Get a training pipeline")
async def get_pipeline(project: str, location: str, pipeline: str, resources: ResourcesDep) -> Response:
    return await run(resources, project, location, lambda: resources.training.get(pipeline))


@router.post(PIPELINES + "/{pipeline}:cancel", summary="Cancel a training pipeline (its process is stopped)")
async def cancel_pipeline(project: str, location: str, pipeline: str, resources: ResourcesDep) -> Response:
    def cancel() -> dict[str, object]:
        resources.training.cancel(pipeline)
        return {}

    return await run(resources, project, location, cancel)
