"""No-training baselines: Beam's online detectors (``apache_beam.ml.anomaly``) on the same rows.

Beam's ZScore, IQR and RobustZScore are univariate and learn as they go. Each runs per base
feature (tax, shipping, value) in event order, scoring a row before learning it (as a stream
would); a row's score is the largest of its three features' scores, and it is an anomaly when
that reaches the detector's own default threshold (3, 1.5 and 3). Rows before a detector has
enough history score 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from models.features import BASE_COLUMNS, features

MAX_ROWS = 20000  # the Python trackers cost ~10 us a call; the evaluation set is cut to this


def _detectors() -> dict[str, Callable[[], Any]]:
    from apache_beam.ml.anomaly.detectors.iqr import IQR
    from apache_beam.ml.anomaly.detectors.robust_zscore import RobustZScore
    from apache_beam.ml.anomaly.detectors.zscore import ZScore

    return {"beam_zscore": ZScore, "beam_iqr": IQR, "beam_robust_zscore": RobustZScore}


def run_online(make: Callable[[], Any], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(score, is_anomaly) of each row, detectors learning online column by column."""
    import apache_beam as beam

    scores = np.zeros(len(X))
    cutoff = float(make()._threshold_criterion.threshold)  # the detector's own default threshold
    for j in range(X.shape[1]):
        det = make()
        col = X[:, j]
        for i, v in enumerate(col.tolist()):
            row = beam.Row(x=v)
            s = det.score_one(row)
            det.learn_one(row)
            if s is not None and not math.isnan(s) and s > scores[i]:
                scores[i] = s
    return scores, scores >= cutoff


def beam_baselines(rows: Any, max_rows: int = MAX_ROWS) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """name -> (scores, flags, rows used) for each Beam online detector, over the first ``max_rows`` rows."""
    X = features(rows, BASE_COLUMNS).to_numpy()[:max_rows]
    return {name: (*run_online(make, X), len(X)) for name, make in _detectors().items()}
