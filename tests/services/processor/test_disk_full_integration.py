"""A full disk under `hyp processor` (its file size limit stands in): pushes are answered 503 naming the cause,
so Pub/Sub pushes them again; no partial file is left in the warehouse; once there is space the same pushes
are written, each message exactly once."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import httpx
import pytest

from services.common.processes import free_port
from services.warehouse.query import query
from tests.fixtures.diskfull import disk_full
from tests.services.processor.helpers import Service, purchase_event, push_envelope

pytestmark = [
    pytest.mark.integration,
    pytest.mark.local_only("a full disk under the local process (Cloud Run's service writes to BigQuery)"),
]


def test_a_full_disk_answers_503_keeps_nothing_partial_and_recovers(endpoint_url, tmp_path) -> None:
    warehouse = tmp_path / "warehouse"
    env = {
        **os.environ,
        "HYP_WAREHOUSE_DIR": str(warehouse),
        "HYP_ENDPOINT_URL": endpoint_url,
        "HYP_PROCESSOR_DEADLETTER_TOPIC": "",
        "HYP_PROCESSOR_COMMIT_INTERVAL_S": "0.05",
        "HYP_PROCESSOR_COMPACT_INTERVAL_S": "0",
    }
    service = Service("processor", free_port(), env, tmp_path / "processor.log")
    service.start()
    try:
        assert service.process is not None
        now = datetime.now(UTC)
        before = [push_envelope(purchase_event(20.0 + i, user=f"b{i}"), f"before-{i}", now) for i in range(3)]
        during = [push_envelope(purchase_event(40.0 + i, user=f"d{i}"), f"during-{i}", now) for i in range(3)]
        with httpx.Client(base_url=service.url, timeout=30) as client:
            assert [client.post("/", content=b).status_code for b in before] == [204] * 3
            with disk_full(service.process.pid, limit=1024):  # smaller than any Parquet file it writes
                answers = [client.post("/", content=b) for b in during]
                assert [a.status_code for a in answers] == [503] * 3
                assert "hyp processor cannot write its data folder (File too large)" in answers[0].json()["reason"]
                assert answers[0].headers["retry-after"]
                assert [p for p in warehouse.rglob("*") if p.name.endswith(".tmp")] == []
                assert client.get("/health").status_code == 200  # alive, and says so
            assert [client.post("/", content=b).status_code for b in during + before] == [204] * 6  # space is back
        ids = ", ".join(f"'{k}-{i}'" for k in ("before", "during") for i in range(3))
        for table in ("cloud_run", "cloud_run_anomaly"):
            sql = f"SELECT message_id, count(*) AS n FROM {table} WHERE message_id IN ({ids}) GROUP BY message_id"
            assert sorted((r["message_id"], r["n"]) for r in query(warehouse, sql).to_pylist()) == sorted(
                (f"{k}-{i}", 1) for k in ("before", "during") for i in range(3)
            )
    finally:
        service.stop()
