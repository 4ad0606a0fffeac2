from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.evaluation import choose_threshold, evaluate, labels_of


def test_max_f1_threshold_separates_when_it_can() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.9, 1.0])
    y = np.array([0, 0, 0, 1, 1])
    threshold, how = choose_threshold(scores, y)
    assert 0.3 < threshold < 0.9 and threshold == pytest.approx(0.6)
    assert "max-f1" in how


def test_contamination_threshold_without_labels() -> None:
    scores = np.arange(100, dtype=float)
    threshold, _ = choose_threshold(scores, None, contamination=0.1)
    assert threshold == pytest.approx(np.quantile(scores, 0.9))
    assert (scores > threshold).sum() == 10


def test_metrics_overall_and_per_kind() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    kinds = np.array(["", "", "", "", "spike", "spike", "burst"])
    scores = np.array([0.0, 0.1, 0.2, 0.8, 0.9, 0.95, 0.1])
    flags = scores > 0.5
    m = evaluate(y, kinds, scores, flags)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["kind.spike.recall"] == 1.0
    assert m["kind.burst.recall"] == 0.0
    assert m["kind.spike.roc_auc"] == 1.0


def test_labels_from_warehouse_strings_and_missing_labels() -> None:
    frame = pd.DataFrame({"anomaly": ["0", "1", "true"], "anomaly_kind": ["", "spike", None]})
    y, kinds = labels_of(frame)
    assert y.tolist() == [0, 1, 1]
    assert kinds.tolist() == ["", "spike", "anomaly"]
    assert labels_of(pd.DataFrame({"anomaly": [None, "1"]})) is None
    assert labels_of(pd.DataFrame({"tax": [1.0]})) is None
