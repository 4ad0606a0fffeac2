"""The one wrapper of every prediction route: time and count the request, and turn what went wrong into
the route's own error body (Google's for Vertex's routes, MLflow's for ``/invocations``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import Response

from services.endpoint.instances import InputError
from services.endpoint.predictor import Predictor
from services.endpoint.resources.errors import ApiError

log = logging.getLogger(__name__)

# (HTTP status, message, canonical code or None) -> the error response; see responses.google_error
ErrorShape = Callable[[int, str, str | None], Response]


async def guarded(
    predictor: Predictor,
    route: str,
    error: ErrorShape,
    work: Callable[..., Awaitable[Response]],
    *args: Any,
) -> Response:
    """``await work(*args)``, counted under ``route``; a refused request (InputError, ApiError) gets its status
    and message in ``error``'s shape, anything else a 500 naming the exception."""
    start = time.perf_counter()
    status = 200
    try:
        return await work(*args)
    except InputError as exc:
        status = exc.status
        return error(status, str(exc), None)
    except ApiError as exc:
        status = exc.http_status
        return error(status, exc.message, exc.status)
    except Exception as exc:
        status = 500
        log.exception("prediction failed")
        return error(500, f"prediction failed: {type(exc).__name__}: {exc}", None)
    finally:
        predictor.observe(route, status, start)
