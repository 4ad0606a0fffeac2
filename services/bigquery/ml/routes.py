"""The models API (``/bigquery/v2/projects/{p}/datasets/{d}/models[/{m}]``) Google's client calls:
list_models, get_model, update_model (labels, description, friendlyName, expirationTime; If-Match on
the etag), delete_model. Models are created by CREATE MODEL, as on BigQuery; store.py keeps them."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from services.bigquery.catalog import Catalog
from services.bigquery.errors import BigQueryError, invalid
from services.bigquery.ml import store
from services.bigquery.paging import list_page

PREFIX = "/bigquery/v2/projects/{project}/datasets/{dataset}/models"


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def _catalog(request: Request) -> Catalog:
    return request.app.state.catalog  # type: ignore[no-any-return]


def router() -> APIRouter:
    api = APIRouter()

    @api.get(PREFIX)
    async def list_models(request: Request, project: str, dataset: str) -> Response:
        models = await run_in_threadpool(store.list_models, _catalog(request), project, dataset)
        return _json(list_page(request, models, "models"))

    @api.get(PREFIX + "/{model}")
    async def get_model(request: Request, project: str, dataset: str, model: str) -> Response:
        ref = store.ModelRef(project, dataset, model)
        document = await run_in_threadpool(store.load, _catalog(request), ref)
        return _json(document["resource"])

    @api.patch(PREFIX + "/{model}")
    async def update_model(request: Request, project: str, dataset: str, model: str) -> Response:
        ref = store.ModelRef(project, dataset, model)
        settings = request.app.state.settings
        raw = await request.body()
        if len(raw) > settings.max_request_bytes:
            raise invalid(f"Request payload size exceeds the limit: {settings.max_request_bytes} bytes.")
        try:
            patch = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError as exc:
            raise BigQueryError(400, "parseError", f"Parse error: {exc}") from None
        if not isinstance(patch, dict):
            raise BigQueryError(400, "parseError", "The request body must be a JSON object.")
        catalog = _catalog(request)
        expected = request.headers.get("if-match")
        if expected:
            current = (await run_in_threadpool(store.load, catalog, ref))["resource"].get("etag")
            if expected != current:
                raise BigQueryError(412, "conditionNotMet", "Precondition check failed: the model has changed.")
        return _json(await run_in_threadpool(store.update, catalog, ref, patch))

    @api.delete(PREFIX + "/{model}")
    async def delete_model(request: Request, project: str, dataset: str, model: str) -> Response:
        await run_in_threadpool(store.delete, _catalog(request), store.ModelRef(project, dataset, model))
        return Response(status_code=204)

    return api
