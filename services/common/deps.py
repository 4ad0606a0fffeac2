"""FastAPI dependencies that hand a route what its app holds in ``app.state`` (settings, a collector, ...).

Each service names its own, typed, from one line::

    CollectorDep = Annotated[Collector, Depends(from_state("collector"))]

The dependency is ``async def``, so FastAPI resolves it on the event loop instead of sending it to a
worker thread, and a missing name fails loudly (``AttributeError`` naming it), not with ``None``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request


def from_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """An async dependency returning ``request.app.state.<name>``."""

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    dependency.__name__ = dependency.__qualname__ = f"app_state_{name}"
    return dependency
