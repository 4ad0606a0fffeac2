"""The bounded ledger, its warehouse lookups and the endpoint micro-batcher, on real parts: a real
warehouse folder (services.warehouse.append) and a real endpoint app served on a free port."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime

import pytest

from services.processor.endpoint_client import EndpointRejected, PredictBatcher, VertexClient
from services.processor.ledger import TABLES, Ledger, Lookups
from services.warehouse import append
from tests.services.processor.helpers import run

DAY = "2026-11-26"


def processor_row(mid: str, source: str = "processor") -> dict:
    moment = datetime(2026, 11, 26, 10, 0, 0)
    return {"event_datetime": moment, "event": "purchase", "message_id": mid, "source": source, "publish_time": moment}


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_ledger_memory_stays_bounded_and_the_floor_rises_to_what_it_forgets():
    clock = Clock()
    ledger = Ledger(max_ids=100, max_age_s=60, start_margin_s=5, clock=clock)
    assert ledger.floor == clock.now + 5
    published = [clock.now + 10 + i for i in range(1000)]
    for i, p in enumerate(published):
        ledger.add("cloud_run", [(f"m{i}", p)])
    assert len(ledger.recent["cloud_run"]) == 100  # the cap, not the 1,000 written
    assert ledger.written["cloud_run"] == 1000
    assert ledger.floor == published[899]  # the newest forgotten publish time
    assert ledger.known("cloud_run", "m999", published[999]) is True
    assert ledger.known("cloud_run", "m5", published[5]) is None  # forgotten: ask the warehouse
    assert ledger.known("cloud_run", "new", published[999] + 1) is False  # later than the floor: new
    assert ledger.known("cloud_run_anomaly", "m999", published[999]) is False  # tables on their own
    assert ledger.known("cloud_run", "no-time", None) is None
    clock.now += 61  # by age too
    ledger.add("cloud_run", [("late", published[-1] + 2)])
    assert list(ledger.recent["cloud_run"]) == ["late"]
    assert ledger.floor == published[-1]
    for i in range(500):
        ledger.deadlettered.add(f"d{i}")
    assert len(ledger.deadlettered) == 100 and "d499" in ledger.deadlettered and "d0" not in ledger.deadlettered


def test_lookups_find_only_the_processors_rows_in_one_query_and_skip_files_written_before_the_publish(tmp_path):
    append(tmp_path, "cloud_run", [processor_row("old-1"), processor_row("other", source="dataflow")])
    old_file = next((tmp_path / "cloud_run").rglob("*.parquet"))
    os.utime(old_file, (time.time() - 3600, time.time() - 3600))  # written an hour ago
    append(tmp_path, "cloud_run", [processor_row("recent-1"), processor_row("it's-quoted")])
    lookups = Lookups(tmp_path, clock_margin_s=30)
    hour_ago, now = time.time() - 3700, time.time() - 10

    async def scenario():
        asks = [("old-1", hour_ago), ("other", hour_ago), ("recent-1", now), ("it's-quoted", now), ("nope", now)]
        return await asyncio.gather(*(lookups("cloud_run", [(m, DAY, p)]) for m, p in asks))

    assert run(scenario()) == [True, False, True, True, False]
    assert lookups.queries == 1  # five concurrent asks, one query
    assert lookups.candidates("cloud_run", {"old-1": (DAY, now)}) == [
        str(f) for f in sorted(set(_files(tmp_path)) - {old_file})
    ]
    assert lookups.candidates("cloud_run", {"x": ("2026-11-25", hour_ago)}) == []  # another day's partition
    assert len(lookups.candidates("cloud_run", {"x": (None, None)})) == 2  # no date, no time: every file


def test_a_restarted_ledger_asks_the_warehouse_only_about_messages_published_before_it_started(tmp_path):
    append(tmp_path, "cloud_run", [processor_row("before")])
    lookups = Lookups(tmp_path)
    ledger = Ledger(lookups, start_margin_s=0)
    start = ledger.floor

    async def scenario():
        return (
            await ledger.needed("before", start - 60, DAY, list(TABLES)),
            await ledger.needed("never-seen", start - 60, DAY, list(TABLES)),
            await ledger.needed("after", start + 1, DAY, list(TABLES)),
        )

    assert run(scenario()) == (["cloud_run_anomaly"], list(TABLES), list(TABLES))
    assert ledger.lookups == 2  # "after" needed no lookup
    assert ledger.known("cloud_run", "before", None) is True  # remembered once found


def test_lookups_skip_files_without_the_processors_columns_and_null_ids(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    append(tmp_path, "cloud_run", [processor_row("mine"), {**processor_row("x"), "message_id": None}])
    foreign = tmp_path / "cloud_run" / f"date={DAY}" / "part-foreign.parquet"
    pq.write_table(pa.table({"event": ["purchase"]}), foreign)  # no message_id, no source: no processor row
    lookups = Lookups(tmp_path)

    async def scenario():
        return await asyncio.gather(*(lookups("cloud_run", [(m, DAY, None)]) for m in ("mine", "x", "absent")))

    assert run(scenario()) == [True, False, False]
    assert lookups.files_read == 2


def test_serving_the_processor_loads_no_duckdb(tmp_path):
    """Its lookups read two columns with pyarrow: DuckDB's library was 35 MiB of the processor's RSS."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import asyncio, sys\n"
        "from services.processor.app import _warm_up, create_app\n"
        "from services.processor.ledger import Lookups\n"
        "from services.warehouse import append\n"
        "from services.warehouse.compaction import Compactor\n"
        "from tests.services.processor.test_ledger_and_batching import DAY, processor_row\n"
        "_warm_up()\n"
        f"append({str(tmp_path)!r}, 'cloud_run', [processor_row('m')])\n"
        f"found = asyncio.run(Lookups({str(tmp_path)!r})('cloud_run', [('m', DAY, None)]))\n"
        "print(found, 'duckdb' in sys.modules)\n"
    )
    root = Path(__file__).parents[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]


def _files(root):
    return sorted((root / "cloud_run").rglob("*.parquet"))


def instance(value: float) -> dict:
    return {"tax": 4.0, "shipping": 5.0, "value": value, "items": "[]", "items_count": 1}


def test_concurrent_predictions_share_endpoint_calls_and_a_refused_instance_fails_alone(endpoint_url):
    async def scenario():
        client = VertexClient(endpoint_url, "hyp-local", "europe-west1", "1", 5.0)
        batcher = PredictBatcher(client, linger_s=0.01)
        try:
            good = await asyncio.gather(*(batcher.predict(instance(10.0 + i)) for i in range(50)))
            calls = batcher.calls
            mixed = await asyncio.gather(
                batcher.predict(instance(1.0)),
                batcher.predict({**instance(2.0), "value": "not a number"}),
                batcher.predict(instance(1_000_000.0)),
                return_exceptions=True,
            )
            return good, calls, mixed
        finally:
            await batcher.aclose()

    good, calls, mixed = run(scenario())
    assert len(good) == 50 and calls < 5
    assert [g.prediction["score"] for g in good[:2]] == pytest.approx(
        [((10 - 50) ** 2 + 1) ** 0.5, ((11 - 50) ** 2 + 1) ** 0.5]
    )
    assert isinstance(mixed[1], EndpointRejected)
    assert mixed[0].prediction["is_anomaly"] is False and mixed[2].prediction["is_anomaly"] is True
