"""The endpoint's FastAPI app: Vertex AI's online-prediction REST surface plus MLflow's ``/invocations``.

Routes live in :mod:`services.endpoint.routes` (one APIRouter per contract) and get the app's
:class:`~services.endpoint.predictor.Predictor` and the request body through
:mod:`services.endpoint.deps`. Handlers read the body themselves (bounded, :mod:`services.endpoint.body`)
and parse it with :mod:`services.endpoint.instances` instead of through pydantic: the request
schemas are for ``/docs`` and OpenAPI only, and the hot path stays free of per-row model objects.
Prediction POSTs are answered by those same routes through :mod:`services.endpoint.fastpath`,
ahead of FastAPI's per-request machinery. Every response says which model version answered:
``modelVersionId`` in Vertex's body and the ``X-Model-Version`` header everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from fastapi import FastAPI

from services.endpoint.fastpath import FastRoutes
from services.endpoint.predictor import Predictor
from services.endpoint.resources.errors import ApiError
from services.endpoint.resources.service import VertexResources
from services.endpoint.routes import container, ops, training, vertex
from services.endpoint.routes import resources as resource_routes
from services.endpoint.serving import ModelSource
from services.endpoint.settings import EndpointSettings

log = logging.getLogger(__name__)


class EndpointApp(FastAPI):
    """FastAPI with its prediction routes answered first (before FastAPI's per-request checks)."""

    fast_path: FastRoutes | None = None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        fast = self.fast_path
        if fast is not None and scope["type"] == "http" and await fast.handle(self, scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def lifespan_of(predictor: Predictor, resources: VertexResources | None = None) -> Any:
    """The first model load (a failure leaves /health at 503) and the endpoints of the state file, then the
    alias poll until shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder = predictor.holder
        await asyncio.to_thread(holder.refresh)
        if resources is not None:
            try:
                await asyncio.to_thread(resources.restore)
            except Exception:  # a bad state file must not keep endpoint 1 down
                log.exception("endpoint state not restored")
        if holder.current is None:
            log.warning("no model yet; retrying in the background", extra={"fields": {"error": holder.last_error}})
        poller = None
        interval = predictor.settings.reload_interval_s
        if interval > 0:
            poller = asyncio.create_task(holder.poll(interval))
        try:
            yield
        finally:
            if resources is not None:
                await asyncio.to_thread(resources.close)
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller

    return lifespan


def create_app(settings: EndpointSettings, source: ModelSource) -> FastAPI:
    """The endpoint app serving whatever ``source`` says the alias points at."""
    predictor = Predictor(settings, source)
    resources = VertexResources(settings)
    app = EndpointApp(
        title="hyp endpoint",
        description="Vertex AI online prediction (REST) for the champion model of the MLflow registry.",
        version="1",
        lifespan=lifespan_of(predictor, resources),
    )
    app.state.predictor = predictor
    app.state.holder = predictor.holder
    app.state.metrics = predictor.metrics
    app.state.settings = settings
    app.state.vertex = resources
    routers = [vertex.router, container.build_router(settings.predict_route), ops.build_router(settings.health_route)]
    for router in routers:
        app.include_router(router)
    app.include_router(resource_routes.router)  # management methods: FastAPI's own path, not the fast one
    app.include_router(training.router)
    app.add_exception_handler(ApiError, resource_routes.api_error)
    app.fast_path = FastRoutes(route for router in routers for route in router.routes)
    return app
