"""What every route needs: the store, the base URL the client used, query parameters as the API reads them."""

from __future__ import annotations

import base64
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import Depends, Request

from services.common.deps import from_state
from services.storage import errors
from services.storage.store import Preconditions, Store
from services.storage.uploads import Sessions

StoreDep = Annotated[Store, Depends(from_state("store"))]
SessionsDep = Annotated[Sessions, Depends(from_state("sessions"))]


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.invalid(f"Invalid value for {name}: '{raw}' is not an integer") from None


def preconditions(request: Request) -> Preconditions:
    return Preconditions(
        if_generation_match=int_param(request, "ifGenerationMatch"),
        if_generation_not_match=int_param(request, "ifGenerationNotMatch"),
        if_metageneration_match=int_param(request, "ifMetagenerationMatch"),
        if_metageneration_not_match=int_param(request, "ifMetagenerationNotMatch"),
    )


def source_preconditions(request: Request) -> Preconditions:
    return Preconditions(
        if_generation_match=int_param(request, "ifSourceGenerationMatch"),
        if_generation_not_match=int_param(request, "ifSourceGenerationNotMatch"),
        if_metageneration_match=int_param(request, "ifSourceMetagenerationMatch"),
        if_metageneration_not_match=int_param(request, "ifSourceMetagenerationNotMatch"),
    )


def max_results(request: Request) -> int:
    value = int_param(request, "maxResults")
    if value is None:
        return 1000
    if value < 1:
        raise errors.invalid("Invalid value for maxResults: must be at least 1")
    return min(value, 1000)


def encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode() if last else ""


def decode_token(request: Request) -> str:
    token = request.query_params.get("pageToken") or ""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode() if token else ""
    except ValueError:
        raise errors.invalid("Invalid value for pageToken") from None


def path_after_objects(request: Request) -> list[str]:
    """The segments after ``/b/<bucket>/o/`` of the raw (still percent-encoded) path, decoded one by one:
    the object name is one segment (clients encode its ``/`` as ``%2F``), then an action such as
    ``compose`` or ``rewriteTo/b/<bucket>/o/<object>``."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    text = raw.decode("latin-1").split("?", 1)[0]
    _, _, rest = text.partition("/o/")
    return [unquote(segment, encoding="utf-8", errors="surrogatepass") for segment in rest.split("/")]


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    import json

    try:
        value = json.loads(raw)
    except ValueError:
        raise errors.ApiError(400, "parseError", "Parse Error: the request body is not JSON") from None
    if not isinstance(value, dict):
        raise errors.ApiError(400, "parseError", "Parse Error: the request body must be a JSON object")
    return value
