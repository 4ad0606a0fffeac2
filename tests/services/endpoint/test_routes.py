"""The endpoint's one route table: its POST routes answered ahead of FastAPI exactly as FastAPI answers them."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient

from services.endpoint.app import create_app
from services.endpoint.fastpath import FastRoutes, Unsupported
from services.endpoint.settings import EndpointSettings
from tests.services.endpoint.helpers import FakeSource, TinyKMeans

VERTEX = "/v1/projects/hyp-local/locations/europe-west1/endpoints"
NORMAL = {"tax": 4.0, "shipping": 5.0, "value": 50.0}


def make_app(**env: str) -> FastAPI:
    settings = EndpointSettings(**{"HYP_ENDPOINT_RELOAD_INTERVAL_S": "0", **env})  # type: ignore[arg-type]
    return create_app(settings, FakeSource({"1": TinyKMeans(1.0)}, alias="1"))


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_prediction_route_of_the_openapi_document_is_answered_ahead_of_fastapi():
    """Prediction POSTs take the fast path; the resource methods (upload, create, deploy) go through FastAPI."""
    app = make_app(AIP_PREDICT_ROUTE="/custom/predict")
    paths = app.openapi()["paths"]
    resource_posts = [p for p, ops in paths.items() if "post" in ops and "vertex resources" in ops["post"]["tags"]]
    suffixes = ("/models:upload", "/models/{model}:mergeVersionAliases", "/endpoints")
    suffixes += ("/endpoints/{endpoint}:deployModel", "/endpoints/{endpoint}:undeployModel")
    suffixes += ("/trainingPipelines", "/trainingPipelines/{pipeline}:cancel")
    assert sorted(p.rsplit("/locations/{location}", 1)[1] for p in resource_posts) == sorted(suffixes)
    assert not any(app.fast_path and app.fast_path.match(concrete(path)) for path in resource_posts)
    posts = [path for path, ops in paths.items() if "post" in ops and path not in resource_posts]
    assert sorted(posts) == sorted(
        [
            VERTEX.replace("hyp-local", "{project}").replace("europe-west1", "{location}") + s
            for s in (
                "/{endpoint}:predict",
                "/{endpoint}:rawPredict",
            )
        ]
        + ["/custom/predict", "/invocations"]
    )
    assert app.fast_path is not None
    assert all(app.fast_path.match(concrete(path)) for path in posts)
    gets = [path for path, ops in app.openapi()["paths"].items() if "post" not in ops]
    assert gets and not any(app.fast_path.match(concrete(path)) for path in gets)


REQUESTS = [
    ("predict", f"{VERTEX}/1:predict", {"instances": [NORMAL]}),
    ("predict", f"{VERTEX}/1:predict?$alt=json;enum-encoding=int", {"instances": [NORMAL, {"tax": 1}]}),  # 400
    ("predict", f"{VERTEX}/2:predict", {"instances": [NORMAL]}),  # 404: another endpoint
    ("rawPredict", f"{VERTEX}/1:rawPredict", {"dataframe_records": [NORMAL]}),
    ("invocations", "/invocations", {"inputs": [NORMAL, NORMAL]}),
    ("invocations", "/invocations", {"instances": []}),  # 400
    ("container", "/predict", {"instances": [[4.0, 5.0, 50.0]]}),
    ("container", "/predict", {"instances": [{"tax": 1, "shipping": 2, "value": 3, "x": "y" * 2000}]}),  # 413
]


@pytest.mark.parametrize(("route", "path", "body"), REQUESTS)
def test_fast_path_answers_as_fastapi_does(route, path, body):
    fast, plain = make_app(HYP_ENDPOINT_MAX_BODY_BYTES="1024"), make_app(HYP_ENDPOINT_MAX_BODY_BYTES="1024")
    plain.fast_path = None  # FastAPI's own routing and dependency solving
    with TestClient(fast) as f, TestClient(plain) as p:
        a, b = f.post(path, json=body), p.post(path, json=body)
    assert (a.status_code, a.content) == (b.status_code, b.content)
    assert {k: v for k, v in a.headers.items() if k != "date"} == {k: v for k, v in b.headers.items() if k != "date"}
    for app in (fast, plain):  # counted once, under the same route label, both ways
        labels = {"route": route, "code": str(a.status_code)}
        assert app.state.metrics.registry.get_sample_value("hyp_endpoint_requests_total", labels) == 1


async def _async_dep(request: Request) -> str:
    return "ok"


def _sync_dep(request: Request) -> str:
    return "sync"


def test_a_route_the_fast_path_cannot_supply_is_refused_when_the_table_is_built():
    async def needs_query(q: str) -> Response:
        return Response(q)

    async def needs_sync(value: Annotated[str, Depends(_sync_dep)]) -> Response:
        return Response(value)

    async def fine(project: str, value: Annotated[str, Depends(_async_dep)]) -> Response:
        return Response(project + value)

    for handler, reason in ((needs_query, "query parameters"), (needs_sync, "not an async def")):
        router = APIRouter()
        router.add_api_route("/{project}/x", handler, methods=["POST"])
        with pytest.raises(Unsupported, match=reason):
            FastRoutes(router.routes)
    router = APIRouter()
    router.add_api_route("/{project}/x", fine, methods=["POST"])
    assert FastRoutes(router.routes).match("/p/x") is not None
