"""Every model kind behind one small interface: ``fit(X)``, ``score(X)`` (higher = more anomalous).

``X`` is the float matrix of :func:`models.features.features` in the detector's feature order.
The pyfunc wrapper (models/pyfunc.py) adds the threshold and the feature function around it.

Streaming fitness (one event at a time, as the detector scores): ``kmeans``, ``iforest``, ``hbos``
and ``autoencoder`` keep a small fitted state and score a row in constant time. ``ecod`` and
``copod`` compare each call's rows with the whole training set (pyod rescans it on every call),
and ``lof`` searches neighbours in the training set, so their per-event cost grows with the
training set: fine for batch evaluation, a poor fit for per-event scoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from models.errors import ModelInputError
from models.features import FEATURE_SETS
from models.kmeans import BqmlKMeans

STREAMING_FIT = {
    "kmeans": True,
    "iforest": True,
    "hbos": True,
    "envelope": True,
    "autoencoder": True,
    "ecod": False,
    "copod": False,
    "lof": False,
}


@dataclass
class Detector:
    """Base class: a feature set, parameters, and a fitted state."""

    kind: ClassVar[str] = ""
    default_features: ClassVar[str] = "rich"
    params: dict[str, Any] = field(default_factory=dict)
    feature_set: str = ""

    def __post_init__(self) -> None:
        self.feature_set = self.feature_set or self.params.pop("features", None) or self.default_features
        if self.feature_set not in FEATURE_SETS:
            raise ModelInputError(f"features: unknown feature set {self.feature_set!r} ({', '.join(FEATURE_SETS)})")

    @property
    def columns(self) -> tuple[str, ...]:
        return FEATURE_SETS[self.feature_set]

    def fit(self, X: np.ndarray) -> Detector:
        raise NotImplementedError

    def score(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def extra(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Model-specific output columns beside score and is_anomaly (k-means: BQML columns)."""
        return {}

    def score_with_extra(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(score, extra columns) in one pass; detectors whose extras share the work override it."""
        return self.score(X), self.extra(X)

    def describe(self) -> dict[str, Any]:
        return {"model_kind": self.kind, "features": ",".join(self.columns), **self.params}


@dataclass
class KMeansDetector(Detector):
    """BQML-parity k-means; score = ML.DETECT_ANOMALIES' normalized_distance."""

    kind: ClassVar[str] = "kmeans"
    default_features: ClassVar[str] = "base"
    model: BqmlKMeans | None = None

    def fit(self, X: np.ndarray) -> KMeansDetector:
        p = self.params
        self.model = BqmlKMeans(
            num_clusters=int(p.setdefault("num_clusters", 2)),
            standardize_features=bool(p.setdefault("standardize_features", True)),
            max_iterations=int(p.setdefault("max_iterations", 20)),
            seed=int(p.setdefault("seed", 0)),
        ).fit(X)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        return self.model.normalized(X)[1]

    def extra(self, X: np.ndarray) -> dict[str, np.ndarray]:
        ids, nd = self.model.normalized(X)
        return {"nearest_centroid_id": ids.astype(np.int64), "normalized_distance": nd}

    def score_with_extra(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        ids, nd = self.model.normalized(X)
        return nd, {"nearest_centroid_id": ids.astype(np.int64), "normalized_distance": nd}

    def cluster_mapping(self, labels: np.ndarray | None, X: np.ndarray) -> dict[str, Any]:
        """Per centroid id: training size, and (with labels) its anomaly share; ids where anomalies dominate."""
        ids, _ = self.model.normalized(X)
        mapping: dict[str, Any] = {"sizes": {}, "anomaly_share": {}, "anomaly_centroid_ids": []}
        for c in range(1, len(self.model.centroids_) + 1):
            members = ids == c
            mapping["sizes"][str(c)] = int(members.sum())
            if labels is not None and members.any():
                share = float(labels[members].mean())
                mapping["anomaly_share"][str(c)] = share
                if share > 0.5:
                    mapping["anomaly_centroid_ids"].append(c)
        return mapping


class _Scaled(Detector):
    """Robust scaling (median / IQR) before a model that is sensitive to scale."""

    center_: np.ndarray
    scale_: np.ndarray

    def _fit_scaler(self, X: np.ndarray) -> np.ndarray:
        self.center_ = np.median(X, axis=0)
        q75, q25 = np.percentile(X, [75, 25], axis=0)
        iqr = q75 - q25
        std = X.std(axis=0)
        self.scale_ = np.where(iqr > 0, iqr, np.where(std > 0, std, 1.0))
        return self._scale(X)

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return (X - self.center_) / self.scale_


PYOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "iforest": {"n_estimators": 100, "max_samples": 256, "random_state": 0},
    "ecod": {},
    "copod": {},
    "hbos": {"n_bins": 20},
    "lof": {"n_neighbors": 20},
}


@dataclass
class PyodDetector(_Scaled):
    """A pyod detector (IForest, ECOD, COPOD, HBOS, LOF); score = pyod's decision_function."""

    name: str = "iforest"
    model: Any = None

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.name

    def _build(self) -> Any:
        params = {**PYOD_DEFAULTS[self.name], **self.params}
        self.params = params
        if self.name == "iforest":
            from pyod.models.iforest import IForest

            return IForest(**params)
        if self.name == "ecod":
            from pyod.models.ecod import ECOD

            return ECOD(**params)
        if self.name == "copod":
            from pyod.models.copod import COPOD

            return COPOD(**params)
        if self.name == "hbos":
            from pyod.models.hbos import HBOS

            return HBOS(**params)
        from pyod.models.lof import LOF

        return LOF(**params)

    def fit(self, X: np.ndarray) -> PyodDetector:
        self.model = self._build()
        try:
            self.model.fit(self._fit_scaler(X))
        except TypeError as exc:
            raise ModelInputError(f"{self.name}: bad parameter ({exc})") from None
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.decision_function(self._scale(X)), dtype=np.float64)


@dataclass
class EnvelopeDetector(_Scaled):
    """Per-feature envelope of normal behaviour; score = the largest exceedance over all features.

    Fit learns each feature's ``[q, 1 - q]`` quantile range on the (normal) training rows and a
    robust scale (IQR, else standard deviation, else range); a row's score is
    ``max_j max(0, low_j - x_j, x_j - high_j) / scale_j``: 0 inside every range, growing with the
    distance outside the worst one. Constant time per row, so fit for streaming.
    """

    kind: ClassVar[str] = "envelope"
    low_: np.ndarray | None = None
    high_: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> EnvelopeDetector:
        q = float(self.params.setdefault("quantile", 0.0))
        self._fit_scaler(X)
        self.low_, self.high_ = np.quantile(X, q, axis=0), np.quantile(X, 1.0 - q, axis=0)
        span = self.high_ - self.low_
        self.scale_ = np.where(self.scale_ > 0, self.scale_, np.where(span > 0, span, 1.0))
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        over = np.maximum(np.maximum(self.low_ - X, X - self.high_), 0.0) / self.scale_
        return over.max(axis=1)


def build(kind: str, params: dict[str, Any] | None = None) -> Detector:
    """A fresh, unfitted detector of the named kind; ModelInputError for an unknown name."""
    params = dict(params or {})
    if kind == "kmeans":
        return KMeansDetector(params=params)
    if kind in PYOD_DEFAULTS:
        return PyodDetector(params=params, name=kind)
    if kind == "envelope":
        return EnvelopeDetector(params=params)
    if kind == "autoencoder":
        from models.autoencoder import AutoencoderDetector

        return AutoencoderDetector(params=params)
    raise ModelInputError(f"unknown model {kind!r} (models: {', '.join(MODEL_KINDS)})")


MODEL_KINDS = ("kmeans", "iforest", "ecod", "copod", "hbos", "lof", "autoencoder", "envelope")
