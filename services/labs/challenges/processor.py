"""Challenge 4: complete the inference processing service; events pushed by Pub/Sub must land in cloud_run_anomaly.

The service writes with Google's BigQuery client (``insert_rows_json``) into ``hyp bigquery``, whose
``ecommerce_sink.cloud_run_anomaly`` is the warehouse table the check reads.

The check runs the participant's copy (unless something already listens on the lab's processor port),
gives it a push subscription of its own, publishes labelled purchases through the emulator and polls
the warehouse for their rows.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from pathlib import Path

from services.common.names import attribute_sql, short
from services.common.processes import stop_group
from services.labs.challenges import NotYet, deploy
from services.labs.challenges.common import copy_solution, copy_template, work_folder
from services.labs.runtime import (
    LabError,
    child_env,
    ensure_bigquery,
    ensure_emulator,
    ensure_vertex,
    log,
    port_open,
    run_hyp,
)
from services.labs.settings import LabSettings

APP = "main.py"
PURCHASES = 60


def start(s: LabSettings) -> None:
    deploy.start(s)
    try:
        deploy.check(s)
    except NotYet:
        log("your k-means is not deployed yet: applying challenge 3's solution first")
        deploy.solve(s)
    ensure_emulator(s)
    ensure_bigquery(s)
    copy_template(s, 4)


def endpoint_id(s: LabSettings) -> str:
    """The id of challenge 2's endpoint, which the service calls (HYP_ENDPOINT_ID), as the workshop's does."""
    return short(deploy.participant_endpoint(s).resource_name)


def run_service(s: LabSettings, folder: Path, log_path: Path) -> subprocess.Popen | None:
    """Start the participant's app on the processor port (None when something already listens there)."""
    if port_open("127.0.0.1", s.processor_port):
        log(f"something already listens on 127.0.0.1:{s.processor_port}: checking that service")
        return None
    if not (folder / APP).exists():
        raise NotYet(f"no {folder / APP}: run `hyp lab start 4` to get the template")
    args = [sys.executable, "-m", "uvicorn", "main:app", "--app-dir", str(folder), "--port", str(s.processor_port)]
    env = child_env(s, HYP_ENDPOINT_URL=s.endpoint_url, HYP_ENDPOINT_ID=endpoint_id(s))
    with log_path.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NotYet(f"your service exited at start (exit {proc.returncode}):\n{_tail(log_path)}")
        if port_open("127.0.0.1", s.processor_port):
            return proc
        time.sleep(0.2)
    stop_group(proc)
    raise NotYet(f"your service did not listen on port {s.processor_port} within 30 s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 12) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def smoke_push(s: LabSettings, run_id: str) -> None:
    """One push of a hand-made purchase straight to the service: a clear error before any waiting."""
    import base64
    import json
    from datetime import UTC, datetime

    import httpx

    item = {"item_id": "lab-1", "item_name": "lab mug", "price": 12.5, "quantity": 2}
    event = {
        "event_datetime": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "event": "purchase",
        "user_id": "lab-user",
        "client_id": "lab-client",
        "page": "/checkout",
        "page_previous": "/cart",
        "ecommerce": {
            "items": [item],
            "purchase": {
                "transaction_id": f"{run_id}-smoke",
                "affiliation": "lab",
                "value": 25.0,
                "tax": 5.25,
                "shipping": 4.99,
                "currency": "EUR",
                "coupon": "",
                "items": [item],
            },
        },
    }
    envelope = {
        "message": {
            "data": base64.b64encode(json.dumps(event).encode()).decode(),
            "attributes": {"run_id": f"{run_id}-smoke", "event": "purchase"},
            "messageId": f"{run_id}-smoke",
            "publishTime": datetime.now(UTC).isoformat(),
        },
        "subscription": s.subscription_path("hyp-lab-4-smoke"),
    }
    url = f"http://127.0.0.1:{s.processor_port}/"
    try:
        r = httpx.post(url, json=envelope, timeout=15.0)
    except httpx.HTTPError as exc:
        raise NotYet(f"POST {url} with one push envelope: {type(exc).__name__}: {exc}") from None
    if not 200 <= r.status_code < 300:
        raise NotYet(f"your service answered HTTP {r.status_code} to one pushed purchase: {r.text[:300]}")


def rows_of(s: LabSettings, run_id: str) -> tuple[int, int, int]:
    """(rows, distinct messages, anomalies) of one run in cloud_run_anomaly."""
    from services.warehouse.query import query
    from services.warehouse.tables import WarehouseError

    sql = (
        "SELECT count(*) AS n, count(DISTINCT message_id) AS m, count(*) FILTER (WHERE anomaly) AS a "
        f"FROM cloud_run_anomaly WHERE {attribute_sql('run_id')} = '{run_id}'"
    )
    try:
        t = query(s.warehouse_dir, sql, read_only=True).to_pylist()[0]
    except WarehouseError:
        return 0, 0, 0
    return int(t["n"]), int(t["m"]), int(t["a"])


def check(s: LabSettings) -> str:
    from google.api_core.exceptions import NotFound

    from services.common.pubsub_clients import subscriber

    ensure_emulator(s)
    ensure_vertex(s)
    ensure_bigquery(s)
    folder = work_folder(s, 4)
    folder.mkdir(parents=True, exist_ok=True)
    run_id = f"lab4-{uuid.uuid4().hex[:8]}"
    proc = run_service(s, folder, folder / "service.log")
    sub = subscriber(s.pubsub_emulator_host)
    path = s.subscription_path(f"hyp-lab-4-{run_id}")
    try:
        try:
            smoke_push(s, run_id)
        except NotYet as exc:
            log_path = folder / "service.log"
            where = f"\n--- your service's log ({log_path}):\n{_tail(log_path)}" if proc else ""
            raise NotYet(f"{exc}{where}") from None
        sub.create_subscription(
            request={
                "name": path,
                "topic": s.topic_path(s.events_topic),
                "push_config": {"push_endpoint": f"http://127.0.0.1:{s.processor_port}/"},
                "filter": f'attributes.run_id = "{run_id}"',
                "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 2}},
            },
            timeout=10,
        )
        args = ["loadgen", "--to", "pubsub", "--topic", s.events_topic, "--count", str(PURCHASES), "--max"]
        args += ["--mix", "purchase=1", "--anomaly-rate", "value_spike=0.2", "--seed", "5"]
        try:
            run_hyp(s, [*args, "--run-id", run_id, "--emulator-host", s.pubsub_emulator_host or "", "--no-progress"])
        except LabError as exc:
            raise NotYet(f"could not publish test events: {exc}") from None
        deadline = time.monotonic() + min(s.wait_s, 60)
        m = a = 0
        while time.monotonic() < deadline:
            _n, m, a = rows_of(s, run_id)
            if m >= PURCHASES and a > 0:
                break
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.5)
    finally:
        with contextlib.suppress(NotFound):
            sub.delete_subscription(subscription=path, timeout=10)
        sub.close()
        if proc is not None:
            stop_group(proc)
    where = f"\n--- your service's log ({folder / 'service.log'}):\n{_tail(folder / 'service.log')}" if proc else ""
    if m < PURCHASES * 0.9:
        raise NotYet(f"{m} of {PURCHASES} pushed purchases reached cloud_run_anomaly within the wait{where}")
    if a == 0:
        raise NotYet(f"{m} purchases scored, but none flagged as anomalous although 20% were value spikes{where}")
    return f"{m} of {PURCHASES} pushed purchases landed in cloud_run_anomaly, {a} flagged as anomalies"


def solve(s: LabSettings) -> None:
    copy_solution(s, 4)
