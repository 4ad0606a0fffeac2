"""Notification configurations: insert, get, list, delete (cloud.google.com/storage/docs/json_api/v1/notifications)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from services.common.deps import from_state
from services.storage import notifications
from services.storage.routes.common import StoreDep, base_url, json_body

router = APIRouter(prefix="/storage/v1/b/{bucket}/notificationConfigs")
PublisherDep = Annotated[notifications.Publisher, Depends(from_state("publisher"))]


@router.post("")
async def insert(bucket: str, request: Request, s: StoreDep, publisher: PublisherDep) -> dict[str, Any]:
    body = await json_body(request)
    s.get_bucket(bucket)
    probe = notifications.check(body, [])  # bad input is refused before the emulator is asked
    await run_in_threadpool(publisher.check_topic, notifications.topic_path(probe))
    config = await run_in_threadpool(s.add_notification, bucket, lambda existing: notifications.check(body, existing))
    return notifications.notification_json(bucket, config, base_url(request))


@router.get("")
def list_configs(bucket: str, request: Request, s: StoreDep) -> dict[str, Any]:
    s.get_bucket(bucket)
    items = [notifications.notification_json(bucket, c, base_url(request)) for c in s.notifications[bucket]]
    return {"kind": "storage#notifications", "items": items}


@router.get("/{config_id}")
def get(bucket: str, config_id: str, request: Request, s: StoreDep) -> dict[str, Any]:
    return notifications.notification_json(bucket, s.get_notification(bucket, config_id), base_url(request))


@router.delete("/{config_id}", status_code=204)
def delete(bucket: str, config_id: str, s: StoreDep) -> Response:
    s.delete_notification(bucket, config_id)
    return Response(status_code=204)
