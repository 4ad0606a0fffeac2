"""Objects: list, get (metadata or ``alt=media``), patch, delete, copy, rewrite, compose
(cloud.google.com/storage/docs/json_api/v1/objects). Uploads live in routes/uploads.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from services.storage import errors, resources
from services.storage.naming import check_object
from services.storage.routes.common import (
    StoreDep,
    base_url,
    decode_token,
    encode_token,
    int_param,
    json_body,
    max_results,
    path_after_objects,
    preconditions,
    source_preconditions,
)
from services.storage.store import Preconditions, Store, Stored

router = APIRouter()
CHUNK = 1 << 20
MAX_COMPOSE_SOURCES = 32


@router.get("/storage/v1/b/{bucket}/o")
def list_objects(bucket: str, request: Request, s: StoreDep) -> dict[str, Any]:
    q = request.query_params
    items, prefixes, last = s.list_objects(
        bucket,
        prefix=q.get("prefix") or "",
        delimiter=q.get("delimiter") or "",
        max_results=max_results(request),
        page_token=decode_token(request),
        start_offset=q.get("startOffset") or "",
        end_offset=q.get("endOffset") or "",
        include_trailing_delimiter=(q.get("includeTrailingDelimiter") or "").lower() == "true",
    )
    out: dict[str, Any] = {
        "kind": "storage#objects",
        "items": [resources.object_json(o, base_url(request)) for o in items],
    }
    if prefixes:
        out["prefixes"] = prefixes
    if last:
        out["nextPageToken"] = encode_token(last)
    return out


@router.get("/storage/v1/b/{bucket}/o/{rest:path}")
@router.get("/download/storage/v1/b/{bucket}/o/{rest:path}")
def get(bucket: str, request: Request, s: StoreDep) -> Response:
    segments = path_after_objects(request)
    if len(segments) != 1:
        raise errors.ApiError(404, "notFound", "Not Found")
    generation, pre = int_param(request, "generation"), preconditions(request)
    if request.query_params.get("alt") == "media" or request.url.path.startswith("/download/"):
        stored, f = s.open_object(bucket, segments[0], generation, pre)
        try:
            return download(f, stored, request.headers.get("range"))
        except BaseException:
            f.close()
            raise
    stored = s.get_object(bucket, segments[0], generation, pre)
    from fastapi.responses import JSONResponse

    return JSONResponse(resources.object_json(stored, base_url(request)))


def download(f: BinaryIO, stored: Stored, range_header: str | None) -> Response:
    """The bytes of ``f`` (the object's open data file, closed when sent) as a full or ranged response."""
    size = stored["size"]
    headers = {
        "X-Goog-Hash": f"crc32c={stored['crc32c']},md5={stored['md5Hash']}",
        "X-Goog-Generation": str(stored["generation"]),
        "X-Goog-Metageneration": str(stored["metageneration"]),
        "X-Goog-Stored-Content-Length": str(size),
        "X-Goog-Stored-Content-Encoding": stored.get("contentEncoding") or "identity",
        "ETag": f'"{stored["md5Hash"]}"',
        "Accept-Ranges": "bytes",
    }
    first, last = 0, size - 1
    status = 200
    if range_header:
        span = parse_range(range_header, size)
        if span is None:
            raise errors.ApiError(416, "requestedRangeNotSatisfiable", "The requested range cannot be satisfied.")
        first, last = span
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(max(0, last - first + 1))

    def chunks() -> Iterator[bytes]:
        with f:
            f.seek(first)
            left = last - first + 1
            while left > 0:
                data = f.read(min(CHUNK, left))
                if not data:
                    return
                left -= len(data)
                yield data

    content_type = stored.get("contentType") or "application/octet-stream"
    return StreamingResponse(chunks(), status_code=status, headers=headers, media_type=content_type)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` as (first, last) inclusive; None when unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return (0, size - 1) if size else None
    start, _, end = spec.strip().partition("-")
    try:
        if start == "":
            n = int(end)
            return (max(0, size - n), size - 1) if n > 0 and size else None
        first = int(start)
        last = min(int(end), size - 1) if end else size - 1
    except ValueError:
        return (0, size - 1) if size else None
    return (first, last) if first <= last and first < size else None


@router.patch("/storage/v1/b/{bucket}/o/{rest:path}")
@router.put("/storage/v1/b/{bucket}/o/{rest:path}")
async def patch(bucket: str, request: Request, s: StoreDep) -> dict[str, Any]:
    segments = path_after_objects(request)
    if len(segments) != 1:
        raise errors.ApiError(404, "notFound", "Not Found")
    body = await json_body(request)
    stored = await run_in_threadpool(s.patch_object, bucket, segments[0], body, preconditions(request))
    return resources.object_json(stored, base_url(request))


@router.delete("/storage/v1/b/{bucket}/o/{rest:path}", status_code=204)
def delete(bucket: str, request: Request, s: StoreDep) -> Response:
    segments = path_after_objects(request)
    if len(segments) != 1:
        raise errors.ApiError(404, "notFound", "Not Found")
    s.delete_object(bucket, segments[0], int_param(request, "generation"), preconditions(request))
    return Response(status_code=204)


@router.post("/storage/v1/b/{bucket}/o/{rest:path}")
async def action(bucket: str, request: Request, s: StoreDep) -> dict[str, Any]:
    """``copyTo``, ``rewriteTo`` and ``compose``: all write a new object from stored bytes."""
    segments = path_after_objects(request)
    body = await json_body(request)
    if len(segments) == 2 and segments[1] == "compose":
        stored = await run_in_threadpool(compose, s, bucket, segments[0], body, request)
        return resources.object_json(stored, base_url(request))
    if len(segments) == 6 and segments[1] in ("copyTo", "rewriteTo") and segments[2] == "b" and segments[4] == "o":
        source = s.open_object(
            bucket, segments[0], int_param(request, "sourceGeneration"), source_preconditions(request)
        )
        stored = await run_in_threadpool(copy, s, source, segments[3], segments[5], body, request)
        resource = resources.object_json(stored, base_url(request))
        if segments[1] == "copyTo":
            return resource
        size = str(stored["size"])
        return {
            "kind": "storage#rewriteResponse",
            "totalBytesRewritten": size,
            "objectSize": size,
            "done": True,
            "resource": resource,
        }
    raise errors.ApiError(404, "notFound", "Not Found")


def copy(
    s: Store, source: tuple[Stored, BinaryIO], bucket: str, name: str, body: dict[str, Any], request: Request
) -> Stored:
    stored, f = source
    with f:
        check_object(name)
        s.get_bucket(bucket)
        tmp, hasher = s.spool(read_all(f))
    metadata = resources.writable(body) or resources.writable(stored)
    return s.write_object(bucket, name, tmp, hasher, metadata, preconditions(request))


def read_all(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(CHUNK):
        yield chunk


def compose(s: Store, bucket: str, name: str, body: dict[str, Any], request: Request) -> Stored:
    check_object(name)
    sources = body.get("sourceObjects") or []
    if not sources:
        raise errors.required("Required: sourceObjects.")
    if len(sources) > MAX_COMPOSE_SOURCES:
        raise errors.invalid(f"The number of source objects ({len(sources)}) exceeds {MAX_COMPOSE_SOURCES}.")
    found: list[tuple[Stored, BinaryIO]] = []
    try:
        for src in sources:
            want = (src.get("objectPreconditions") or {}).get("ifGenerationMatch")
            pre = Preconditions(if_generation_match=int(want) if want is not None else None)
            generation = int(src["generation"]) if src.get("generation") else None
            found.append(s.open_object(bucket, src.get("name") or "", generation, pre))
        tmp, hasher = s.spool(chunk for _, f in found for chunk in read_all(f))
    finally:
        for _, f in found:
            f.close()
    metadata = resources.writable(body.get("destination") or {})
    extra = {"componentCount": sum(int(o.get("componentCount", 1)) for o, _ in found)}
    return s.write_object(bucket, name, tmp, hasher, metadata, preconditions(request), extra=extra)
