"""`hyp processor` as a real process on a warehouse that hours of running left behind.

Thousands of small commits of processor rows are in the warehouse before it starts; the endpoint
is the real app with the in-test model (conftest). Redeliveries of messages written "before the
restart", by this process, and new ones leave exactly one row per message and table; concurrent
pushes share endpoint calls and files; the ledger's memory stays at its cap.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.common.processes import free_port
from services.warehouse.query import files, query
from tests.services.processor.helpers import Service, fill_warehouse, purchase_event, push_envelope, view_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COMMITS = 1500  # 3,000 files per table ... 1,500 in cloud_run and 1,500 in cloud_run_anomaly
LEDGER_CAP = 100


@pytest.fixture(scope="module")
def processor(endpoint_url, tmp_path_factory):
    work = tmp_path_factory.mktemp("processor-restart")
    warehouse = work / "warehouse"
    old = fill_warehouse(warehouse, COMMITS)
    env = {
        **os.environ,
        "HYP_WAREHOUSE_DIR": str(warehouse),
        "HYP_ENDPOINT_URL": endpoint_url,
        "HYP_PROCESSOR_DEADLETTER_TOPIC": "",
        "HYP_PROCESSOR_LEDGER_MAX_IDS": str(LEDGER_CAP),
        "HYP_PROCESSOR_COMPACT_INTERVAL_S": "0",  # the file counts below are the processor's own
    }
    service = Service("processor", free_port(), env, work / "processor.log")
    service.start()
    try:
        yield service, warehouse, old
    finally:
        service.stop()


def health(service: Service) -> dict:
    return httpx.get(service.url + "/health", timeout=10).json()


def post_all(url: str, bodies: list[bytes]) -> list[int]:
    async def go() -> list[int]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            answers = await asyncio.gather(*(client.post("/", content=b) for b in bodies))
        return [a.status_code for a in answers]

    return asyncio.run(go())


def counts(warehouse, table: str, ids: list[str]) -> dict[str, int]:
    listed = ", ".join(f"'{i}'" for i in ids)
    sql = f"SELECT message_id, count(*) AS n FROM {table} WHERE message_id IN ({listed}) GROUP BY message_id"
    return {r["message_id"]: r["n"] for r in query(warehouse, sql).to_pylist()}


def test_starts_without_reading_the_warehouse(processor):
    service, warehouse, _ = processor
    assert len(files(warehouse, "cloud_run")) >= COMMITS
    state = health(service)
    assert state["status"] == "ok"
    assert state["ledger_ids"] == 0 and state["lookups"] == 0  # nothing was read at start


def test_redeliveries_from_before_the_restart_and_new_messages_leave_one_row_each(processor):
    service, warehouse, old = processor
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    replayed = old[:40] + old[-40:]
    crash_victims = [mid for mid, _ in replayed if mid.endswith("-1") and int(mid.split("-")[1]) % 10 == 0]
    assert crash_victims  # the anomaly row is missing for these: the redelivery writes only it
    new = [(f"new-{i}", purchase_event(30.0 + i, user=f"n{i}")) for i in range(40)]
    views = [(f"view-{i}", view_event(f"v{i}")) for i in range(10)]
    now = datetime.now(UTC)
    bodies = [push_envelope(e, m, hour_ago) for m, e in replayed]
    bodies += [push_envelope(e, m, now) for m, e in new + views]
    lookups_before = health(service)["lookups"]
    assert set(post_all(service.url, bodies)) == {204}
    assert health(service)["lookups"] - lookups_before >= len(replayed)  # published before the start: asked
    assert set(post_all(service.url, bodies)) == {204}  # and all of it once more
    purchases = [m for m, _ in replayed + new]
    assert counts(warehouse, "cloud_run", purchases + [m for m, _ in views]) == dict.fromkeys(
        purchases + [m for m, _ in views], 1
    )
    assert counts(warehouse, "cloud_run_anomaly", purchases) == dict.fromkeys(purchases, 1)
    assert counts(warehouse, "cloud_run_anomaly", [m for m, _ in views]) == {}


def test_concurrent_pushes_share_endpoint_calls_and_files(processor):
    service, warehouse, _ = processor

    def calls() -> float:
        text = httpx.get(service.url + "/metrics", timeout=10).text
        line = next(x for x in text.splitlines() if x.startswith("hyp_processor_endpoint_instances_count"))
        return float(line.split()[-1])

    files_before = {t: len(files(warehouse, t)) for t in ("cloud_run", "cloud_run_anomaly")}
    calls_before = calls()
    now = datetime.now(UTC)
    bodies = [push_envelope(purchase_event(40.0 + i, user=f"b{i}"), f"batch-{i}", now) for i in range(200)]
    assert set(post_all(service.url, bodies)) == {204}
    new_files = {t: len(files(warehouse, t)) - files_before[t] for t in files_before}
    assert 1 <= new_files["cloud_run"] <= 20 and 1 <= new_files["cloud_run_anomaly"] <= 20, new_files
    assert 1 <= calls() - calls_before <= 50  # 200 instances in a few :predict calls
    ids = [f"batch-{i}" for i in range(200)]
    assert counts(warehouse, "cloud_run_anomaly", ids) == dict.fromkeys(ids, 1)


def test_ledger_memory_stays_at_its_cap_and_forgotten_ids_are_still_not_doubled(processor):
    service, warehouse, _ = processor
    now = datetime.now(UTC)
    bodies = [push_envelope(purchase_event(60.0 + i, user=f"c{i}"), f"cap-{i}", now) for i in range(400)]
    assert set(post_all(service.url, bodies)) == {204}
    state = health(service)
    assert state["processed"]["cloud_run"] >= 400
    assert state["ledger_ids"] <= 2 * LEDGER_CAP  # per table, not one per message
    assert set(post_all(service.url, bodies[:50])) == {204}  # long forgotten: looked up
    ids = [f"cap-{i}" for i in range(400)]
    assert counts(warehouse, "cloud_run", ids) == dict.fromkeys(ids, 1)
    assert counts(warehouse, "cloud_run_anomaly", ids) == dict.fromkeys(ids, 1)
