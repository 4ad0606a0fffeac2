"""from_state: the one "read a named object from request.app.state" dependency of every FastAPI service."""

from __future__ import annotations

import inspect
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from services.common.deps import from_state

pytestmark = pytest.mark.local_only("FastAPI plumbing shared by hyp-local's services")

# at module level: with postponed annotations FastAPI resolves a route's annotations in its module's globals
Greeting = Annotated[dict[str, str], Depends(from_state("greeting"))]
Nowhere = Annotated[object, Depends(from_state("nowhere"))]


def test_a_route_gets_the_object_the_app_holds_under_that_name():
    app = FastAPI()
    app.state.greeting = {"text": "hello"}

    @app.get("/")
    async def greet(greeting: Greeting) -> dict[str, str]:
        return greeting

    with TestClient(app) as client:
        assert client.get("/").json() == {"text": "hello"}
        app.state.greeting = {"text": "changed"}  # read per request, not captured when the app was built
        assert client.get("/").json() == {"text": "changed"}


def test_a_missing_name_fails_naming_it():
    app = FastAPI()

    @app.get("/")
    async def route(value: Nowhere) -> None:
        return None

    with TestClient(app) as client, pytest.raises(AttributeError, match="nowhere"):
        client.get("/")


def test_it_is_async_and_named_after_the_state_it_reads():
    dependency = from_state("collector")
    assert inspect.iscoroutinefunction(dependency)  # resolved on the event loop, never sent to a worker thread
    assert dependency.__name__ == "app_state_collector"
