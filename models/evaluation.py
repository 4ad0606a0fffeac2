"""Evaluation against ground truth, and the threshold decided at training.

Metrics overall and per anomaly kind (each kind's rows against the normal rows): precision,
recall, F1 from the model's own ``is_anomaly``; ROC-AUC and PR-AUC (average precision) from its
``score``. Keys are flat (``f1``, ``kind.burst.recall``) so they log to MLflow as they are.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from models.errors import ModelInputError

METRICS = ("precision", "recall", "f1", "roc_auc", "pr_auc")


def labels_of(frame: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(anomaly 0/1 ints, anomaly_kind strings) of a frame, or None when it carries no labels."""
    if "anomaly" not in frame.columns:
        return None
    raw = frame["anomaly"]
    if raw.isna().any():
        return None
    y = raw.map(lambda v: 1 if str(v).strip().lower() in ("1", "true", "1.0") else 0).to_numpy(dtype=np.int64)
    kinds = (
        frame["anomaly_kind"].fillna("").astype(str).to_numpy()
        if "anomaly_kind" in frame.columns
        else np.where(y == 1, "anomaly", "")
    )
    kinds = np.where((y == 1) & (kinds == ""), "anomaly", kinds)
    return y, kinds


def binary_metrics(y: np.ndarray, scores: np.ndarray, flags: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    tp = int(np.sum(flags & (y == 1)))
    fp = int(np.sum(flags & (y == 0)))
    fn = int(np.sum(~flags & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    both = 0 < y.sum() < len(y)
    finite = np.nan_to_num(scores, nan=0.0, posinf=np.finfo(np.float64).max, neginf=np.finfo(np.float64).min)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": float(roc_auc_score(y, finite)) if both else math.nan,
        "pr_auc": float(average_precision_score(y, finite)) if both else math.nan,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def evaluate(y: np.ndarray, kinds: np.ndarray, scores: np.ndarray, flags: np.ndarray) -> dict[str, float]:
    """Overall and per-kind metrics, flat keys."""
    flags = np.asarray(flags, dtype=bool)
    out: dict[str, float] = {k: v for k, v in binary_metrics(y, scores, flags).items()}
    out["rows"] = len(y)
    out["anomalies"] = int(y.sum())
    normal = y == 0
    for kind in sorted(set(kinds[y == 1])):
        rows = normal | (kinds == kind)
        for key, value in binary_metrics(y[rows], scores[rows], flags[rows]).items():
            if key in METRICS:
                out[f"kind.{kind}.{key}"] = value
    return out


def choose_threshold(scores: np.ndarray, y: np.ndarray | None = None, contamination: float = 0.01) -> tuple[float, str]:
    """The threshold on ``score`` (is_anomaly = score > threshold) and how it was chosen.

    With labels: the cut that maximises F1 on these (calibration) rows, placed halfway to the
    next lower score for a margin. Without: the ``1 - contamination`` quantile, as BQML does.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if y is not None and 0 < y.sum() < len(y):
        order = np.argsort(-scores, kind="stable")
        s, labels = scores[order], y[order]
        tp = np.cumsum(labels)
        k = np.arange(1, len(s) + 1)
        last = np.r_[s[1:] != s[:-1], True]  # only cut between distinct scores
        precision = tp / k
        recall = tp / labels.sum()
        f1 = np.where(last, 2 * precision * recall / np.maximum(precision + recall, 1e-12), -1.0)
        i = int(np.argmax(f1))
        below = s[i + 1] if i + 1 < len(s) else s[i] - max(abs(s[i]) * 1e-6, 1e-9)
        return float((s[i] + below) / 2.0), f"max-f1 on {len(s)} labelled calibration rows (f1={f1[i]:.4f})"
    if not 0.0 <= contamination < 0.5:
        raise ModelInputError(f"contamination must be in [0, 0.5), got {contamination}")
    return float(np.quantile(scores, 1.0 - contamination)), f"contamination={contamination} quantile"
