"""Uploads (cloud.google.com/storage/docs/json_api/v1/objects/insert): ``uploadType=media`` (bytes only),
``multipart`` (metadata + bytes, what the client sends up to 8 MiB) and ``resumable`` (a session,
then one or more ``PUT`` chunks with ``Content-Range``).

Bytes are streamed into a temporary file as they arrive and committed only when complete and checked
(MD5 and CRC32C, when the client sent them): a request cut off halfway commits nothing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from services.storage import disk, errors, resources
from services.storage.naming import check_object
from services.storage.routes.common import SessionsDep, StoreDep, base_url, json_body, preconditions

router = APIRouter(prefix="/upload/storage/v1")
_RANGE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$")


@router.post("/b/{bucket}/o")
async def insert(bucket: str, request: Request, s: StoreDep, sessions: SessionsDep) -> Response:
    kind = request.query_params.get("uploadType") or "media"
    s.get_bucket(bucket)
    pre = preconditions(request)
    if kind == "resumable":
        metadata = await json_body(request)
        name = check_object(request.query_params.get("name") or metadata.get("name") or "")
        if "contentType" not in metadata and request.headers.get("x-upload-content-type"):
            metadata["contentType"] = request.headers["x-upload-content-type"]
        upload_id = await run_in_threadpool(sessions.start, bucket, name, metadata, pre)
        location = f"{base_url(request)}/upload/storage/v1/b/{bucket}/o?uploadType=resumable&upload_id={upload_id}"
        return Response(status_code=200, headers={"Location": location})
    if kind == "multipart":
        metadata, data, content_type = parse_multipart(request.headers.get("content-type", ""), await request.body())
        metadata.setdefault("contentType", content_type)
        name = check_object(request.query_params.get("name") or metadata.get("name") or "")
        stored = await run_in_threadpool(
            s.write_bytes,
            bucket,
            name,
            data,
            metadata,
            pre,
            expected_md5=metadata.get("md5Hash"),
            expected_crc32c=metadata.get("crc32c"),
        )
        return JSONResponse(resources.object_json(stored, base_url(request)))
    if kind == "media":
        name = check_object(request.query_params.get("name") or "")
        tmp, hasher = await receive(request, s.tmp)
        metadata = {"contentType": request.headers.get("content-type") or "application/octet-stream"}
        stored = await run_in_threadpool(s.write_object, bucket, name, tmp, hasher, metadata, pre)
        return JSONResponse(resources.object_json(stored, base_url(request)))
    raise errors.invalid(f"Invalid upload type: '{kind}' (media, multipart or resumable)")


async def receive(request: Request, tmp_dir: Path) -> tuple[Path, resources.Hasher]:
    """The request body streamed into a new fsynced temporary file, and its hashes."""
    tmp = disk.temp_path(tmp_dir)
    hasher = resources.Hasher()
    try:
        with open(tmp, "wb") as f:
            async for chunk in request.stream():
                f.write(chunk)
                hasher.update(chunk)
            f.flush()
            await run_in_threadpool(os.fsync, f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, hasher


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes, str]:
    """A ``multipart/related`` body's two parts: the JSON metadata, the bytes and their content type."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/") or match is None:
        raise errors.invalid("Invalid multipart request: the Content-Type has no boundary")
    delimiter = b"--" + match.group(1).encode()
    parts = [p for p in body.split(delimiter)[1:] if not p.startswith(b"--")]
    if len(parts) != 2:
        raise errors.invalid(f"Invalid multipart request with {len(parts)} parts (metadata and media expected)")
    decoded = []
    for part in parts:
        head, sep, payload = part.partition(b"\r\n\r\n")
        if not sep:
            raise errors.invalid("Invalid multipart request: a part has no header block")
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in head.decode("latin-1").split("\r\n") if ":" in line)
        }
        decoded.append((headers, payload.removesuffix(b"\r\n")))
    try:
        metadata = json.loads(decoded[0][1] or b"{}")
    except ValueError:
        raise errors.ApiError(400, "parseError", "Parse Error: the metadata part is not JSON") from None
    if not isinstance(metadata, dict):
        raise errors.ApiError(400, "parseError", "Parse Error: the metadata part must be a JSON object")
    return metadata, decoded[1][1], decoded[1][0].get("content-type", "application/octet-stream")


@router.put("/b/{bucket}/o")
async def resume(bucket: str, request: Request, sessions: SessionsDep) -> Response:
    """One chunk of a resumable upload (``Content-Range: bytes a-b/total``, ``/*`` while the total is unknown) or a
    status query (``bytes */total``): 308 with the bytes held so far, or 200 and the object once complete."""
    upload_id = request.query_params.get("upload_id") or ""
    if not upload_id:
        raise errors.required("Required: upload_id.")

    part = await run_in_threadpool(sessions.part, upload_id)
    first, last, total = content_range(request.headers.get("content-range"), request.headers.get("content-length"))
    if first is not None:
        held = part.stat().st_size
        if first > held:
            raise errors.invalid(f"Invalid request. The upload holds {held} bytes; the chunk starts at byte {first}.")
        skip = held - first  # bytes of this chunk the session already holds (a retried chunk)
        sent = 0
        with open(part, "ab") as f:
            async for chunk in request.stream():
                if skip >= len(chunk):
                    skip -= len(chunk)
                else:
                    f.write(chunk[skip:])
                    skip = 0
                sent += len(chunk)
            f.flush()
            await run_in_threadpool(os.fsync, f.fileno())
        if last is not None and sent != last - first + 1:
            raise errors.invalid(
                f"Invalid request. Content-Range announced {last - first + 1} bytes, {sent} were sent."
            )
    result = await run_in_threadpool(sessions.settle, upload_id, total)
    if isinstance(result, dict):
        return JSONResponse(resources.object_json(result, base_url(request)))
    headers = {"Range": f"bytes=0-{result - 1}"} if result else {}
    return Response(status_code=308, headers=headers)


def content_range(header: str | None, length: str | None) -> tuple[int | None, int | None, int | None]:
    """(first, last, total) of a chunk; no header: the whole upload in this one request."""
    if not header:
        size = int(length or 0)
        return 0, (size - 1 if size else None), size
    match = _RANGE.match(header.strip())
    if match is None:
        raise errors.invalid(f"Invalid Content-Range: '{header}'")
    first = int(match.group(1)) if match.group(1) is not None else None
    last = int(match.group(2)) if match.group(2) is not None else None
    total = int(match.group(3)) if match.group(3) != "*" else None
    return first, last, total


@router.delete("/b/{bucket}/o")
def cancel(bucket: str, request: Request, sessions: SessionsDep) -> Response:
    sessions.cancel(request.query_params.get("upload_id") or "")
    return Response(status_code=499)
