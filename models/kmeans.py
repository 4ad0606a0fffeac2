"""K-means with BigQuery ML parity (``MODEL_TYPE='KMEANS'``).

What matches BQML (as its CREATE MODEL / ML.PREDICT / ML.DETECT_ANOMALIES pages describe it):

- ``NUM_CLUSTERS``; ``STANDARDIZE_FEATURES`` (default TRUE): each feature is centred on its
  training mean and divided by its training standard deviation (sample, like BigQuery's STDDEV);
  ``DISTANCE_TYPE='EUCLIDEAN'``; ``MAX_ITERATIONS`` (default 20); k-means++ initialisation.
- ``ML.PREDICT``: ``centroid_id`` (1-based) of the nearest centroid and
  ``nearest_centroids_distance`` (every centroid id with its distance, nearest first), distances
  taken in the standardised space.
- ``ML.DETECT_ANOMALIES``: a row's distance to each centroid is divided by that centroid's median
  training distance (the distances of the training rows assigned to it); ``normalized_distance``
  is the smallest of these, and ``is_anomaly`` is ``normalized_distance > threshold`` where the
  threshold is the ``1 - contamination`` quantile of the training rows' normalized distances.

Local choice: centroid ids are numbered by cluster size, 1 = the largest, so the numbering is
stable from one training to the next (BQML numbers them arbitrarily, which is why the workshop's
"centroid 1 = anomaly" rule breaks). Which ids mean "anomaly" is stored, never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.errors import ModelInputError

QUANTILE_LEVELS = 10001  # stored grid of training normalized distances, for any contamination later


@dataclass
class BqmlKMeans:
    num_clusters: int = 2
    standardize_features: bool = True
    max_iterations: int = 20
    seed: int = 0
    mean_: np.ndarray = field(init=False, repr=False)
    scale_: np.ndarray = field(init=False, repr=False)
    centroids_: np.ndarray = field(init=False, repr=False)  # standardised, row i = id i+1
    cluster_sizes_: np.ndarray = field(init=False, repr=False)
    median_distance_: np.ndarray = field(init=False, repr=False)
    nd_quantiles_: np.ndarray = field(init=False, repr=False)

    def fit(self, X: np.ndarray) -> BqmlKMeans:
        from sklearn.cluster import KMeans

        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) < self.num_clusters:
            raise ModelInputError(f"k-means needs at least NUM_CLUSTERS={self.num_clusters} rows, got {len(X)}")
        if self.num_clusters < 2:
            raise ModelInputError("NUM_CLUSTERS must be at least 2 (as in BigQuery ML)")
        if self.standardize_features:
            self.mean_ = X.mean(axis=0)
            std = X.std(axis=0, ddof=1) if len(X) > 1 else np.ones(X.shape[1])
            self.scale_ = np.where(std > 0, std, 1.0)
        else:
            self.mean_ = np.zeros(X.shape[1])
            self.scale_ = np.ones(X.shape[1])
        Z = (X - self.mean_) / self.scale_
        km = KMeans(
            n_clusters=self.num_clusters,
            init="k-means++",
            n_init=1,
            max_iter=self.max_iterations,
            random_state=self.seed,
            algorithm="lloyd",
        ).fit(Z)
        labels = km.labels_
        sizes = np.bincount(labels, minlength=self.num_clusters)
        order = np.argsort(-sizes, kind="stable")  # id 1 = the largest cluster
        self.centroids_ = km.cluster_centers_[order]
        self.cluster_sizes_ = sizes[order]
        distances = self._distances_std(Z)
        nearest = distances.argmin(axis=1)
        nearest_d = distances[np.arange(len(Z)), nearest]
        median = np.array(
            [np.median(nearest_d[nearest == c]) if (nearest == c).any() else 0.0 for c in range(self.num_clusters)]
        )
        positive = median[median > 0]
        fallback = float(positive.min()) if positive.size else 1.0
        self.median_distance_ = np.where(median > 0, median, fallback)
        nd = (distances / self.median_distance_).min(axis=1)
        self.nd_quantiles_ = np.quantile(nd, np.linspace(0.0, 1.0, QUANTILE_LEVELS))
        return self

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_

    def _distances_std(self, Z: np.ndarray) -> np.ndarray:
        # |z - c|^2 = |z|^2 - 2 z.c + |c|^2, clipped at 0 for rounding; (n, k)
        sq = (Z * Z).sum(axis=1)[:, None] - 2.0 * Z @ self.centroids_.T + (self.centroids_**2).sum(axis=1)[None, :]
        return np.sqrt(np.maximum(sq, 0.0))

    def distances(self, X: np.ndarray) -> np.ndarray:
        """Euclidean distance of every row to every centroid (column j = centroid id j+1)."""
        return self._distances_std(self._standardise(X))

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, list[list[dict[str, float]]]]:
        """ML.PREDICT: (centroid_id per row, nearest_centroids_distance per row)."""
        d = self.distances(X)
        order = np.argsort(d, axis=1, kind="stable")
        ids = order[:, 0] + 1
        nearest = [
            [{"centroid_id": int(j + 1), "distance": float(row[j])} for j in o] for row, o in zip(d, order, strict=True)
        ]
        return ids, nearest

    def normalized(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(nearest centroid id, normalized distance) per row, vectorised."""
        d = self.distances(X)
        ids = d.argmin(axis=1)
        nd = (d / self.median_distance_).min(axis=1)
        return ids + 1, nd

    def contamination_threshold(self, contamination: float) -> float:
        if not 0.0 <= contamination < 0.5:
            raise ModelInputError(f"contamination must be in [0, 0.5), got {contamination}")
        levels = np.linspace(0.0, 1.0, QUANTILE_LEVELS)
        return float(np.interp(1.0 - contamination, levels, self.nd_quantiles_))

    def detect_anomalies(self, X: np.ndarray, contamination: float) -> dict[str, np.ndarray]:
        """ML.DETECT_ANOMALIES: is_anomaly, normalized_distance and centroid_id per row."""
        ids, nd = self.normalized(X)
        return {
            "is_anomaly": nd > self.contamination_threshold(contamination),
            "normalized_distance": nd,
            "centroid_id": ids,
        }

    def centroids(self) -> list[dict[str, float]]:
        """ML.CENTROIDS: one row per centroid and feature index, in the original (unstandardised) units."""
        raw = self.centroids_ * self.scale_ + self.mean_
        return [
            {"centroid_id": c + 1, "feature": j, "numerical_value": float(raw[c, j])}
            for c in range(len(raw))
            for j in range(raw.shape[1])
        ]
