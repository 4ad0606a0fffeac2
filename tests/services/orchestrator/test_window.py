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
