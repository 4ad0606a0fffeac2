"""The detector interface (``fit(X)``, ``score(X)``: higher = more anomalous) and what a kind declares.

``X`` is the float matrix of :func:`models.features.features` in the detector's feature order.
The pyfunc wrapper (models/pyfunc.py) adds the threshold and the feature function around it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from models.errors import ModelInputError
from models.features import FEATURE_SETS

Family = Literal["bigquery-ml", "pyod", "keras", "hyp"]


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


class Scaled(Detector):
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


@dataclass(frozen=True)
class Kind:
    """One model kind as the registry of kinds knows it.

    ``streaming``: a row scores in constant time from a small fitted state (fit for per-event
    scoring); ``family``: where the kind comes from (BigQuery ML parity, pyod, Keras, hyp's own);
    ``search_space``: what ``hyp train --search`` draws from (empty: no search); ``requirements``:
    pip packages beyond the common ones that unpickling and scoring a version need.
    """

    name: str
    build: Callable[[dict[str, Any]], Detector]
    streaming: bool
    family: Family
    search_space: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    requirements: tuple[str, ...] = ()
