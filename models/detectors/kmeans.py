"""k-means with BigQuery ML parity; score = ML.DETECT_ANOMALIES' normalized_distance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from models.detectors.base import Detector, Kind
from models.kmeans import BqmlKMeans


@dataclass
class KMeansDetector(Detector):
    """BQML-parity k-means; score = ML.DETECT_ANOMALIES' normalized_distance."""

    kind: ClassVar[str] = "kmeans"
    default_features: ClassVar[str] = "base"
    model: BqmlKMeans | None = None

    @property
    def fitted(self) -> BqmlKMeans:
        if self.model is None:
            raise RuntimeError("k-means detector used before fit")
        return self.model

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
        return self.fitted.normalized(X)[1]

    def extra(self, X: np.ndarray) -> dict[str, np.ndarray]:
        return self.score_with_extra(X)[1]

    def score_with_extra(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        ids, nd = self.fitted.normalized(X)
        return nd, {"nearest_centroid_id": ids.astype(np.int64), "normalized_distance": nd}

    def contamination_threshold(self, contamination: float) -> float:
        """BQML's threshold for ``contamination``: the normalized distance at that quantile of the training rows."""
        return float(self.fitted.contamination_threshold(contamination))

    def cluster_mapping(self, labels: np.ndarray | None, X: np.ndarray) -> dict[str, Any]:
        """Per centroid id: training size, and (with labels) its anomaly share; ids where anomalies dominate."""
        ids, _ = self.fitted.normalized(X)
        mapping: dict[str, Any] = {"sizes": {}, "anomaly_share": {}, "anomaly_centroid_ids": []}
        for c in range(1, len(self.fitted.centroids_) + 1):
            members = ids == c
            mapping["sizes"][str(c)] = int(members.sum())
            if labels is not None and members.any():
                share = float(labels[members].mean())
                mapping["anomaly_share"][str(c)] = share
                if share > 0.5:
                    mapping["anomaly_centroid_ids"].append(c)
        return mapping


KIND = Kind(
    "kmeans",
    lambda params: KMeansDetector(params=params),
    streaming=True,
    family="bigquery-ml",
    search_space={"num_clusters": [2, 3, 4, 6, 8]},
)
