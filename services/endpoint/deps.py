"""The endpoint routes' dependencies: the app's :class:`Predictor` and the request's bounded body.

Both are ``async def`` so FastAPI runs them on the event loop (a plain ``def`` would go to a
thread), and both take only what :mod:`services.endpoint.fastpath` can supply too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.deps import from_state
from services.endpoint.body import RequestBody
from services.endpoint.predictor import Predictor

PredictorDep = Annotated[Predictor, Depends(from_state("predictor"))]


async def request_body(request: Request, predictor: PredictorDep) -> RequestBody:
    """The body, read on demand and at most ``HYP_ENDPOINT_MAX_BODY_BYTES`` long."""
    return RequestBody(request.scope["headers"], request.receive, predictor.settings.max_body_bytes)


BodyDep = Annotated[RequestBody, Depends(request_body)]
