"""Windows read the labels from the attributes column only, with the warehouse's one label SQL."""

from __future__ import annotations

from datetime import datetime

from services.orchestrator import window
from tests.services.orchestrator.helpers import synthetic_purchases


def test_labels_and_kinds_come_from_the_attributes(tmp_path):
    wh = tmp_path / "warehouse"
    synthetic_purchases(wh, 200, start=datetime(2026, 11, 22, 8, 0), anomaly_rate=0.2, seed=3)
    frame = window.oldest(wh, rows=200)
    assert len(frame) == 200
    labelled = frame[frame["anomaly"]]
    assert 0 < len(labelled) < 200
    assert set(labelled["anomaly_kind"]) == {"value_spike"}
    assert set(frame[~frame["anomaly"]]["anomaly_kind"]) <= {"", None}
    # the generator's spikes are what the label marks: every labelled value is far above the normal ones
    assert labelled["value"].min() > frame[~frame["anomaly"]]["value"].median()


def test_the_events_table_is_a_setting_cloud_run_or_dataflow(tmp_path):
    """HYP_ORCH_EVENTS_TABLE: the processor's cloud_run (default) or the detector's dataflow, nothing else."""
    import pytest

    from services.warehouse import append
    from services.warehouse.query import query

    wh = tmp_path / "warehouse"
    synthetic_purchases(wh, 120, start=datetime(2026, 11, 22, 8, 0), anomaly_rate=0.1, seed=4)
    rows = query(wh, "SELECT * EXCLUDE (ecommerce, weekday, date) FROM cloud_run LIMIT 30").to_pylist()
    append(wh, "dataflow", rows)
    assert len(window.oldest(wh, rows=500)) == 120
    assert len(window.oldest(wh, rows=500, table="dataflow")) == 30
    assert window.count_since(wh, None, "dataflow") == 30
    with pytest.raises(ValueError, match="events table"):
        window.newest(wh, rows=5, table="cloud_run_anomaly")
