"""The FastAPI app: Vertex AI's online-prediction REST surface plus MLflow's ``/invocations``.

Handlers read the body themselves (bounded) and parse it with :mod:`services.endpoint.instances`
instead of through pydantic: the request schemas below are for ``/docs`` and OpenAPI only, and
the hot path stays free of per-row model objects. Every response says which model version
answered: ``modelVersionId`` in Vertex's body and the ``X-Model-Version`` header everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from services.endpoint import schemas
from services.endpoint.instances import InputError, loads, parse_any, parse_vertex
from services.endpoint.metrics import EndpointMetrics
from services.endpoint.serving import ModelHolder, ModelSource, ServedModel, predict_json
from services.endpoint.settings import EndpointSettings

log = logging.getLogger(__name__)

VERTEX_PREFIX = "/v1/projects/{project}/locations/{location}/endpoints"
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
JSON = "application/json"


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _with_predictions(predictions: bytes, rest: dict[str, Any] | None = None) -> bytes:
    """``{"predictions": <already encoded>, **rest}`` without decoding or re-encoding the predictions."""
    tail = orjson.dumps(rest)[1:] if rest else b"}"
    return b'{"predictions":' + predictions + (b"," + tail if rest else tail)


class JsonBytes(Response):
    """An already-encoded JSON body with its headers laid out once (Starlette's Response rebuilds
    and re-checks the header list on every construction: a measurable share of a tiny request)."""

    media_type = JSON

    def __init__(self, body: bytes, status_code: int = 200, headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        raw = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        if headers:
            raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.raw_headers = raw


def google_error(status: int, message: str) -> Response:
    """Google APIs' error body, which the Vertex SDK turns into google.api_core exceptions."""
    body = {"error": {"code": status, "message": message, "status": GOOGLE_STATUS.get(status, "UNKNOWN")}}
    return JsonBytes(_dumps(body), status)


def mlflow_error(status: int, message: str) -> Response:
    """MLflow scoring server's error body."""
    code = {400: "BAD_REQUEST", 413: "BAD_REQUEST", 503: "TEMPORARILY_UNAVAILABLE"}.get(status, "INTERNAL_ERROR")
    return JsonBytes(_dumps({"error_code": code, "message": message}), status)


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


# An oversized body is read and thrown away up to this many bytes before the 413 goes out: answering
# with the body unread and then closing (the client sent ``Connection: close``, or the keep-alive timer
# fired mid-upload) makes the kernel reset the connection, and the client sees ``Connection reset by
# peer`` instead of the status. Bodies declared larger than this are answered at once.
DRAIN_MAX_BYTES = 64 * 1024 * 1024

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


def too_large(limit: int, declared: int | None = None) -> InputError:
    size = f"{declared} bytes is " if declared is not None else ""
    return InputError(f"body: {size}over the limit of {limit} bytes", status=413)


async def discard(receive: Receive, read: int, more_body: bool = True, bound: int = DRAIN_MAX_BYTES) -> None:
    """Read and drop the rest of a request body (at most ``bound`` bytes in all) so the answer reaches
    the client; ``read`` bytes are already in."""
    while more_body and read <= bound:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        read += len(message.get("body", b""))
        more_body = message.get("more_body", False)


def _declared(value: bytes) -> int:
    """The Content-Length as a number; InputError when it is not one."""
    if not value.isdigit():
        raise InputError("Content-Length: not a number")
    return int(value)


async def receive_body(headers: Iterable[tuple[bytes, bytes]], receive: Receive, limit: int) -> bytes:
    """The whole body, or InputError(413) once it is over ``limit`` bytes (the rest read and dropped)."""
    declared, expect = None, False
    for name, value in headers:
        if name == b"content-length":
            declared = _declared(value)
        elif name == b"expect":
            expect = value.lower() == b"100-continue"
    if declared is not None and declared > limit:
        if not expect and declared <= DRAIN_MAX_BYTES:  # with Expect the client waits: nothing to drain
            await discard(receive, 0)
        raise too_large(limit, declared)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InputError("body: the client went away", status=400)
        chunk = message.get("body", b"")
        size += len(chunk)
        more = message.get("more_body", False)
        if size > limit:
            await discard(receive, size, more)
            raise too_large(limit)
        chunks.append(chunk)
        if not more:
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_body(request: Request, limit: int) -> bytes:
    """:func:`receive_body` of a FastAPI request."""
    return await receive_body(request.scope["headers"], request.receive, limit)


def create_app(settings: EndpointSettings, source: ModelSource) -> FastAPI:
    """The endpoint app serving whatever ``source`` says the alias points at."""
    metrics = EndpointMetrics()

    def on_swap(new: ServedModel, old: ServedModel | None) -> None:
        if old is not None:
            metrics.model_version.remove(old.name, old.version)
            metrics.reloads.inc()
        metrics.model_version.labels(new.name, new.version).set(1)

    holder = ModelHolder(source, on_swap=on_swap)
    created = _rfc3339(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(holder.refresh)  # the first load; a failure leaves /health at 503
        if holder.current is None:
            log.warning("no model yet; retrying in the background", extra={"fields": {"error": holder.last_error}})
        poller = None
        if settings.reload_interval_s > 0:
            poller = asyncio.create_task(holder.poll(settings.reload_interval_s))
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller

    app = EndpointApp(
        title="hyp endpoint",
        description="Vertex AI online prediction (REST) for the champion model of the MLflow registry.",
        version="1",
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.state.metrics = metrics
    app.state.settings = settings

    def reader(request: Request) -> BodyReader:
        return lambda: read_body(request, settings.max_body_bytes)

    def served_or_error() -> ServedModel:
        model = holder.current
        if model is None:
            raise InputError(f"no model loaded yet ({holder.last_error or 'loading'})", status=503)
        return model

    async def score(model: ServedModel, batch: Any, *, vertex: bool) -> bytes:
        """The predictions' JSON array (encoded column by column, no per-row objects)."""
        metrics.batch_size.observe(batch.rows)
        if batch.rows <= settings.inline_rows:
            encoded = predict_json(model, batch, vertex=vertex)
        else:
            encoded = await run_in_threadpool(predict_json, model, batch, vertex=vertex)
        counted(metrics.predictions, model.version).inc(batch.rows)
        return encoded

    children: dict[tuple[Any, ...], Any] = {}

    def counted(metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once (prometheus_client's labels() costs microseconds)."""
        key = (metric, *labels)
        child = children.get(key)
        if child is None:
            child = children[key] = metric.labels(*labels)
        return child

    def observe(route: str, status: int, start: float) -> None:
        counted(metrics.requests, route, str(status)).inc()
        counted(metrics.latency, route).observe(time.perf_counter() - start)

    def check_resource(project: str, location: str, endpoint: str) -> None:
        if (project, location, endpoint) != (settings.project, settings.location, settings.endpoint_id):
            name = f"projects/{project}/locations/{location}/endpoints/{endpoint}"
            raise InputError(f"Endpoint `{name}` not found.", status=404)

    async def vertex_call(body: BodyReader, route: str, project: str, location: str, endpoint: str, raw: bool):
        start = time.perf_counter()
        status = 200
        try:
            check_resource(project, location, endpoint)
            payload = loads(await body())
            model = served_or_error()
            if raw:
                batch = parse_any(payload, settings.max_instances, model.features)
            else:
                batch = parse_vertex(payload, settings.max_instances, model.features)
            predictions = await score(model, batch, vertex=True)
            headers = {
                "X-Model-Version": model.version,
                "X-Vertex-AI-Endpoint-Id": settings.endpoint_id,
                "X-Vertex-AI-Deployed-Model-Id": settings.deployed_model_id,
            }
            if raw:
                encoded = _with_predictions(predictions)
            else:
                encoded = _with_predictions(
                    predictions,
                    {
                        "deployedModelId": settings.deployed_model_id,
                        "model": settings.model_resource,
                        "modelDisplayName": model.name,
                        "modelVersionId": model.version,
                    },
                )
            return JsonBytes(encoded, headers=headers)
        except InputError as exc:
            status = exc.status
            return google_error(exc.status, str(exc))
        except Exception as exc:
            status = 500
            log.exception("prediction failed")
            return google_error(500, f"prediction failed: {type(exc).__name__}: {exc}")
        finally:
            observe(route, status, start)

    async def container_call(body: BodyReader, route: str, vertex: bool) -> Response:
        start = time.perf_counter()
        status = 200
        try:
            payload = loads(await body())
            model = served_or_error()
            batch = parse_any(payload, settings.max_instances, model.features)
            predictions = await score(model, batch, vertex=vertex)
            return JsonBytes(_with_predictions(predictions), headers={"X-Model-Version": model.version})
        except InputError as exc:
            status = exc.status
            return mlflow_error(exc.status, str(exc))
        except Exception as exc:
            status = 500
            log.exception("prediction failed")
            return mlflow_error(500, f"prediction failed: {type(exc).__name__}: {exc}")
        finally:
            observe(route, status, start)

    @app.post(
        VERTEX_PREFIX + "/{endpoint}:predict",
        summary="Vertex AI predict",
        openapi_extra=schemas.body(schemas.VERTEX_REQUEST),
        responses=schemas.PREDICT_RESPONSES,
        tags=["vertex"],
    )
    async def predict(request: Request, project: str, location: str, endpoint: str) -> Response:
        """`{"instances": [...], "parameters": {...}}` -> predictions and the model version that answered."""
        return await vertex_call(reader(request), "predict", project, location, endpoint, raw=False)

    @app.post(
        VERTEX_PREFIX + "/{endpoint}:rawPredict",
        summary="Vertex AI rawPredict",
        openapi_extra=schemas.body(schemas.ANY_REQUEST),
        responses=schemas.RAW_RESPONSES,
        tags=["vertex"],
    )
    async def raw_predict(request: Request, project: str, location: str, endpoint: str) -> Response:
        """The body goes to the model server as is (any /invocations shape); its answer comes back as is."""
        return await vertex_call(reader(request), "rawPredict", project, location, endpoint, raw=True)

    @app.get(VERTEX_PREFIX + "/{endpoint}", summary="Get the Endpoint resource", tags=["vertex"])
    async def get_endpoint(project: str, location: str, endpoint: str) -> Response:
        """What `aiplatform.Endpoint(name)` fetches first: name, display name, deployed models."""
        try:
            check_resource(project, location, endpoint)
        except InputError as exc:
            return google_error(exc.status, str(exc))
        return Response(_dumps(endpoint_resource()), media_type=JSON)

    @app.get(VERTEX_PREFIX, summary="List endpoints", tags=["vertex"])
    async def list_endpoints(project: str, location: str) -> Response:
        if (project, location) != (settings.project, settings.location):
            return Response(_dumps({}), media_type=JSON)
        return Response(_dumps({"endpoints": [endpoint_resource()]}), media_type=JSON)

    def endpoint_resource() -> dict[str, Any]:
        model = holder.current
        deployed: list[dict[str, Any]] = []
        loaded = created
        if model is not None:
            loaded = _rfc3339(model.loaded_at)
            deployed.append(
                {
                    "id": settings.deployed_model_id,
                    "model": settings.model_resource,
                    "modelVersionId": model.version,
                    "displayName": model.name,
                    "createTime": loaded,
                    "dedicatedResources": {"machineSpec": {"machineType": "local"}, "minReplicaCount": 1},
                }
            )
        return {
            "name": settings.endpoint_name,
            "createTime": created,
            "updateTime": loaded if deployed else created,
            "displayName": f"{settings.model_name}-endpoint",
            "deployedModels": deployed,
            "trafficSplit": {settings.deployed_model_id: 100} if deployed else {},
        }

    @app.post(
        settings.predict_route,
        summary="Custom-container predict route (AIP_PREDICT_ROUTE)",
        openapi_extra=schemas.body(schemas.ANY_REQUEST),
        responses=schemas.RAW_RESPONSES,
        tags=["container"],
    )
    async def container_predict(request: Request) -> Response:
        return await container_call(reader(request), "container", vertex=True)

    @app.post(
        "/invocations",
        summary="MLflow scoring server's /invocations",
        openapi_extra=schemas.body(schemas.ANY_REQUEST),
        responses=schemas.RAW_RESPONSES,
        tags=["mlflow"],
    )
    async def invocations(request: Request) -> Response:
        """dataframe_split, dataframe_records, instances or inputs -> {"predictions": [...]}."""
        return await container_call(reader(request), "invocations", vertex=False)

    async def health() -> Response:
        model = holder.current
        if model is None:
            body = {"status": "loading", "model": settings.model_uri, "error": holder.last_error}
            return Response(_dumps(body), status_code=503, media_type=JSON)
        body = {"status": "ok", "model": model.name, "version": model.version, "alias": settings.model_alias}
        return Response(_dumps(body), media_type=JSON, headers={"X-Model-Version": model.version})

    health_paths = dict.fromkeys([settings.health_route, "/health", "/ping"])
    for path in health_paths:
        app.add_api_route(path, health, methods=["GET"], summary="Health: 200 once a model is loaded", tags=["ops"])

    @app.get("/metrics", summary="Prometheus metrics", tags=["ops"])
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def fast_vertex(body: BodyReader, match: re.Match[str]) -> Response:
        project, location, endpoint, verb = match.groups()
        raw = verb == "rawPredict"
        return await vertex_call(body, verb, project, location, endpoint, raw=raw)

    routes: dict[str, FastHandler] = {
        settings.predict_route: lambda body, _: container_call(body, "container", vertex=True),
        "/invocations": lambda body, _: container_call(body, "invocations", vertex=False),
    }
    app.fast_path = PredictFastPath(routes, fast_vertex, settings.max_body_bytes)
    return app


BodyReader = Callable[[], Awaitable[bytes]]
FastHandler = Callable[[BodyReader, Any], Awaitable[Response]]
VERTEX_RE = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/endpoints/([^/]+):(predict|rawPredict)$")


class PredictFastPath:
    """Prediction POSTs straight to their handler, skipping FastAPI's routing, middleware and
    dependency machinery (a large share of a one-instance request); everything else, and the same
    handlers for /docs and OpenAPI, stays with FastAPI."""

    def __init__(self, exact: dict[str, FastHandler], vertex: FastHandler, limit: int) -> None:
        self.exact, self.vertex, self.limit = exact, vertex, limit

    async def handle(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> bool:
        """Answer the request when it is a prediction; False (nothing sent) when it is not."""
        path = scope["path"]
        handler, match = self.exact.get(path), None
        if handler is None and path.startswith("/v1/"):
            match = VERTEX_RE.match(path)
            handler = self.vertex if match else None
        if handler is None:
            return False
        response = await handler(lambda: self._body(scope, receive), match)
        await response(scope, receive, send)
        return True

    async def _body(self, scope: MutableMapping[str, Any], receive: Any) -> bytes:
        return await receive_body(scope["headers"], receive, self.limit)


class EndpointApp(FastAPI):
    """FastAPI with the prediction fast path in front of it (before FastAPI's per-request checks)."""

    fast_path: PredictFastPath | None = None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        fast = self.fast_path
        is_post = scope["type"] == "http" and scope["method"] == "POST"
        if is_post and fast is not None and await fast.handle(scope, receive, send):
            return
        await super().__call__(scope, receive, send)
