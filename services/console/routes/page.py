"""The page itself (its assets are mounted at /static by the app) and /health."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = files("services.console") / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
