"""The incremental recent window and drift reading agree with a full recomputation over the same warehouse."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from services.orchestrator import drift, window
from services.orchestrator.recent import RecentWindow
from services.orchestrator.runner import Orchestrator
from services.orchestrator.sensors import Sensors
from services.warehouse.query import files
from tests.services.orchestrator.helpers import StubOps, synthetic_purchases


def test_incremental_window_equals_a_full_query_and_stays_capped(tmp_path):
    wh = tmp_path / "warehouse"
    recent = RecentWindow(wh, rows=300)
    start = datetime(2026, 11, 22, 8, 0)
    for i in range(4):  # four appends, read one at a time
        synthetic_purchases(wh, 200, start=start.replace(minute=i), seconds_apart=0.2, seed=i)
        assert recent.update()
        assert len(recent) <= 300
    assert not recent.update()  # nothing new: nothing read
    full = window.newest(wh, rows=300)
    assert list(recent.table.column("event_datetime").to_pylist()) == list(full["event_datetime"].dt.to_pydatetime())
    assert recent.table.column("value").to_pylist() == full["value"].tolist()


def test_compaction_does_not_duplicate_rows(tmp_path):
    wh = tmp_path / "warehouse"
    start = datetime(2026, 11, 22, 8, 0)
    for i in range(3):
        synthetic_purchases(wh, 100, start=start.replace(minute=i), seconds_apart=0.2, seed=i)
    recent = RecentWindow(wh, rows=250)
    recent.update()
    before = recent.table.column("transaction_id").to_pylist()
    sources = files(wh, "cloud_run")  # compaction, by hand: one merged file replaces its sources
    merged = pa.concat_tables([pq.read_table(f) for f in sources])
    pq.write_table(merged, sources[0].parent / "part-merged.parquet")
    for f in sources:
        f.unlink()
    assert len(files(wh, "cloud_run")) == 1 and pq.read_metadata(files(wh, "cloud_run")[0]).num_rows == 300
    assert recent.update()  # the merged file is new to the window: read, deduplicated
    assert recent.table.column("transaction_id").to_pylist() == before


def test_incremental_drift_reading_equals_a_full_recomputation(settings_for, warehouse_with_purchases):
    orch = Orchestrator(settings_for(drift_recent_rows=300, drift_reference_rows=600), StubOps(champion_f1=0.1))
    sensors = Sensors(orch)
    assert sensors.check_drift() is None
    synthetic_purchases(
        warehouse_with_purchases, 300, start=datetime(2026, 11, 22, 8, 5), seconds_apart=0.12, price_factor=1.8, seed=3
    )
    fired = sensors.check_drift()
    assert fired is not None
    reference = window.oldest(warehouse_with_purchases, rows=600)
    recent = window.newest(warehouse_with_purchases, rows=300)
    for feature in window.FEATURES:
        full = drift.feature_drift(feature, reference[feature].to_numpy(), recent[feature].to_numpy())
        assert fired["features"][feature] == {
            "psi": round(full.psi, 4),
            "ks": round(full.ks_statistic, 4),
            "ks_pvalue": full.ks_pvalue,
        }
    assert fired["since"] == str(recent["event_datetime"].min())
    assert sensors.check_drift() == fired  # unchanged warehouse: the same answer again
