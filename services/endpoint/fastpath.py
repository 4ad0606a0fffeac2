"""FastAPI's own routes, answered without FastAPI's per-request machinery.

For a tiny prediction, FastAPI's middleware stack, routing over every route, request objects and
dependency solving cost a large share of the request. :class:`FastRoutes` takes routes already
declared on APIRouters (the one route table: their paths, compiled by Starlette, and their
dependencies) and calls each route's own handler with the arguments FastAPI would give it:

* path parameters declared as ``str`` (from the route's own compiled path);
* a ``Request`` parameter;
* ``Depends()`` on ``async def`` functions that themselves take only these (solved once per
  request, as FastAPI caches a dependency within a request).

A route needing anything else (query, header, cookie or body parameters, sync or generator
dependencies, security) is refused when the table is built, so a route never silently goes
through a different path. Handlers must return a Response. ``/docs`` and OpenAPI describe the
same routes, and any request the table does not match goes on to FastAPI.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Unsupported(ValueError):
    """A route whose parameters the fast path cannot supply."""


def _check(dependant: Dependant, where: str) -> None:
    unsupported = {
        "query": dependant.query_params,
        "header": dependant.header_params,
        "cookie": dependant.cookie_params,
        "body": dependant.body_params,
        "websocket": dependant.websocket_param_name,
        "http connection": dependant.http_connection_param_name,
        "response": dependant.response_param_name,
        "background tasks": dependant.background_tasks_param_name,
        "security scopes": dependant.security_scopes_param_name,
    }
    for kind, present in unsupported.items():
        if present:
            raise Unsupported(f"{where}: {kind} parameters")
    for param in dependant.path_params:
        if param.field_info.annotation is not str:
            raise Unsupported(f"{where}: path parameter {param.name} is not a str")
    for sub in dependant.dependencies:
        call = sub.call
        if call is None or not inspect.iscoroutinefunction(call):
            raise Unsupported(f"{where}: dependency {sub.name} is not an async def function")
        _check(sub, f"{where} -> {getattr(call, '__name__', call)}")


# where an argument comes from: a path parameter, the Request, or the result of an earlier step
PATH, REQUEST, STEP = 0, 1, 2
Spec = tuple[tuple[str, int, Any], ...]


class _Plan:
    """A dependant flattened into steps (each dependency called once, in the order FastAPI calls them)."""

    def __init__(self) -> None:
        self.steps: list[tuple[Callable[..., Awaitable[Any]], Spec]] = []
        self._index: dict[Any, int] = {}

    def spec(self, dependant: Dependant) -> Spec:
        """Where each argument of ``dependant``'s call comes from; its dependencies become steps."""
        spec: list[tuple[str, int, Any]] = [(p.name, PATH, p.name) for p in dependant.path_params]
        if dependant.request_param_name:
            spec.append((dependant.request_param_name, REQUEST, None))
        for sub in dependant.dependencies:
            index = self._index.get(sub.call) if sub.use_cache else None
            if index is None:
                sub_spec = self.spec(sub)
                index = len(self.steps)
                self.steps.append((sub.call, sub_spec))  # type: ignore[arg-type]  # checked: async def
                if sub.use_cache:
                    self._index[sub.call] = index
            spec.append((sub.name, STEP, index))  # type: ignore[arg-type]  # a dependency always has a name
        return tuple(spec)


def _arguments(spec: Spec, request: Request, path_params: dict[str, str], results: list[Any]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for name, kind, key in spec:  # a loop, not a comprehension: one frame less per call (3.11)
        arguments[name] = path_params[key] if kind == PATH else request if kind == REQUEST else results[key]
    return arguments


class _Route:
    """One route: its compiled path, its handler and where the handler's arguments come from."""

    __slots__ = ("endpoint", "path_regex", "spec", "steps")

    def __init__(self, route: APIRoute) -> None:
        _check(route.dependant, f"{', '.join(sorted(route.methods or ()))} {route.path}")
        self.path_regex: re.Pattern[str] = route.path_regex
        self.endpoint = route.endpoint
        plan = _Plan()
        self.spec = plan.spec(route.dependant)
        self.steps = tuple(plan.steps)

    async def __call__(self, request: Request, path_params: dict[str, str]) -> Response:
        results: list[Any] = []
        for call, spec in self.steps:
            results.append(await call(**_arguments(spec, request, path_params, results)))
        response = await self.endpoint(**_arguments(self.spec, request, path_params, results))
        if not isinstance(response, Response):
            raise TypeError(f"{self.endpoint.__name__} returned {type(response).__name__}, not a Response")
        return response


class FastRoutes:
    """The routes of ``method`` among ``routes``, matched in order on the request path alone."""

    def __init__(self, routes: Iterable[Any], method: str = "POST") -> None:
        self.method = method
        self.exact: dict[str, _Route] = {}
        self.patterns: list[_Route] = []
        for route in routes:
            if isinstance(route, APIRoute) and method in (route.methods or ()):
                fast = _Route(route)
                if route.param_convertors:
                    self.patterns.append(fast)
                elif not any(p.path_regex.match(route.path) for p in self.patterns):  # else an earlier one wins
                    self.exact.setdefault(route.path, fast)

    def match(self, path: str) -> tuple[_Route, dict[str, str]] | None:
        route = self.exact.get(path)
        if route is not None:
            return route, {}
        for route in self.patterns:
            found = route.path_regex.match(path)
            if found:
                return route, found.groupdict()
        return None

    async def handle(self, app: Any, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer the request when one of the routes matches it; False (nothing sent) when none does."""
        if scope["method"] != self.method:
            return False
        path = scope["path"]
        route = self.exact.get(path)  # match(), inline: this runs for every request
        path_params: dict[str, str] = {}
        if route is None:
            for candidate in self.patterns:
                found = candidate.path_regex.match(path)
                if found:
                    route, path_params = candidate, found.groupdict()
                    break
            else:
                return False
        scope["app"] = app
        scope["path_params"] = path_params
        response = await route(Request(scope, receive), path_params)
        await response(scope, receive, send)
        return True
