"""hyp's own envelope detector: the default champion's kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from models.detectors.base import Kind, Scaled
from models.detectors.pyod_detector import REQUIREMENTS


@dataclass
class EnvelopeDetector(Scaled):
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
        if self.low_ is None or self.high_ is None:
            raise RuntimeError("envelope detector used before fit")
        over = np.maximum(np.maximum(self.low_ - X, X - self.high_), 0.0) / self.scale_
        return np.asarray(over.max(axis=1), dtype=np.float64)


# the versions registered so far pin pyod's stack too; kept so a version's requirements do not change
KIND = Kind(
    "envelope",
    lambda params: EnvelopeDetector(params=params),
    streaming=True,
    family="hyp",
    requirements=REQUIREMENTS,
)
