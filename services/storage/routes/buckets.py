"""Buckets: insert, get, list, patch/update, delete (cloud.google.com/storage/docs/json_api/v1/buckets)."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from services.storage import resources
from services.storage.routes.common import (
    StoreDep,
    base_url,
    decode_token,
    encode_token,
    json_body,
    max_results,
    preconditions,
)

router = APIRouter(prefix="/storage/v1")


@router.post("/b")
async def insert(request: Request, s: StoreDep) -> dict[str, Any]:
    body = await json_body(request)
    stored = await run_in_threadpool(s.create_bucket, body)
    return resources.bucket_json(stored, base_url(request))


@router.get("/b")
def list_buckets(request: Request, s: StoreDep) -> dict[str, Any]:
    prefix = request.query_params.get("prefix") or ""
    items, last = s.list_buckets(prefix, max_results(request), decode_token(request))
    out: dict[str, Any] = {
        "kind": "storage#buckets",
        "items": [resources.bucket_json(b, base_url(request)) for b in items],
    }
    if last:
        out["nextPageToken"] = encode_token(last)
    return out


@router.get("/b/{bucket}")
def get(bucket: str, request: Request, s: StoreDep) -> dict[str, Any]:
    return resources.bucket_json(s.get_bucket(bucket), base_url(request))


@router.patch("/b/{bucket}")
async def patch(bucket: str, request: Request, s: StoreDep) -> dict[str, Any]:
    body = await json_body(request)
    stored = await run_in_threadpool(s.patch_bucket, bucket, body, preconditions(request))
    return resources.bucket_json(stored, base_url(request))


@router.put("/b/{bucket}")
async def update(bucket: str, request: Request, s: StoreDep) -> dict[str, Any]:
    body = await json_body(request)
    stored = await run_in_threadpool(
        functools.partial(s.patch_bucket, bucket, body, preconditions(request), replace=True)
    )
    return resources.bucket_json(stored, base_url(request))


@router.delete("/b/{bucket}", status_code=204)
def delete(bucket: str, request: Request, s: StoreDep) -> Response:
    s.delete_bucket(bucket)
    return Response(status_code=204)
