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

Also as BQML's options: ``KMEANS_INIT_METHOD`` ``'RANDOM'`` (training rows drawn at random) and
``'CUSTOM'`` (``init_centroids``: the rows ``KMEANS_INIT_COL`` marks), ``DISTANCE_TYPE='COSINE'``
(1 - cosine similarity) and ``EARLY_STOP`` / ``MIN_REL_PROGRESS`` (stop when an iteration lowers the
loss, the mean squared distance to the nearest centroid, by less than that fraction). With none of
these set, training is scikit-learn's Lloyd k-means exactly as ``hyp train --model kmeans`` runs it.

Local choice: centroid ids are numbered by cluster size, 1 = the largest, so the numbering is
stable from one training to the next (BQML numbers them arbitrarily, which is why the workshop's
"centroid 1 = anomaly" rule breaks). Which ids mean "anomaly" is stored, never assumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.errors import ModelInputError

QUANTILE_LEVELS = 10001  # stored grid of training normalized distances, for any contamination later
# rows x features x centroids of one block's product when scoring: at most this, OpenBLAS multiplies on the calling
# thread (measured on OpenBLAS 0.3.31: 65,536 x 3 x 2 = 393,216 ran on one thread, 131,072 x 3 x 2 on two, whose
# idle threads then spin for work: a busy laptop's CPU for nothing). Scores are row by row, so blocks change no value.
BLOCK_PRODUCT = 393_216
MIN_BLOCK_ROWS, MAX_BLOCK_ROWS = 1_024, 65_536
SKLEARN_TOL = 1e-4  # KMeans' default tol: the centre shift (relative to the features' variance) that stops Lloyd

# called after each Lloyd iteration with {"iteration", "loss", "duration_ms"} (what iterations_ keeps)
OnIteration = Callable[[dict[str, float]], None]


def _step_loss(total: float, before: np.ndarray, after: np.ndarray, sizes: np.ndarray) -> float:
    """Sum of squared distances of the rows to the centres ``before`` they were assigned to, from what one Lloyd
    step already has instead of a second pass over the rows: with ``S_j`` the sum of cluster j's rows
    (``sizes[j] * after[j]``, ``after`` being their mean), sum |x - c_j|^2 = sum |x|^2 - 2 sum_j c_j.S_j
    + sum_j n_j |c_j|^2 (``total`` = sum |x|^2). Equal to scikit-learn's inertia up to rounding (1e-12 relative
    here, the rows being centred and standardised); clipped at 0."""
    sums = after * sizes[:, None]
    value = (
        total - 2.0 * float(np.einsum("ij,ij->", before, sums)) + float(sizes @ np.einsum("ij,ij->i", before, before))
    )
    return max(value, 0.0)


def block_rows(width: int, clusters: int) -> int:
    """Rows scored at a time for ``width`` encoded features and ``clusters`` centroids: the most whose product
    stays within ``BLOCK_PRODUCT`` (between ``MIN_BLOCK_ROWS`` and ``MAX_BLOCK_ROWS``, which also keeps a block's
    temporaries small)."""
    return max(MIN_BLOCK_ROWS, min(MAX_BLOCK_ROWS, BLOCK_PRODUCT // max(width * clusters, 1)))


@dataclass
class BqmlKMeans:
    num_clusters: int = 2
    standardize_features: bool = True
    max_iterations: int = 20
    seed: int = 0
    init_method: str = "KMEANS++"  # KMEANS++ | RANDOM | CUSTOM
    init_centroids: np.ndarray | None = field(default=None, repr=False)  # CUSTOM: raw units, one row a cluster
    distance_type: str = "EUCLIDEAN"  # EUCLIDEAN | COSINE
    min_rel_progress: float | None = None  # None: scikit-learn's own stopping rule
    mean_: np.ndarray = field(init=False, repr=False)
    scale_: np.ndarray = field(init=False, repr=False)
    centroids_: np.ndarray = field(init=False, repr=False)  # standardised, row i = id i+1
    cluster_sizes_: np.ndarray = field(init=False, repr=False)
    median_distance_: np.ndarray = field(init=False, repr=False)
    nd_quantiles_: np.ndarray = field(init=False, repr=False)
    # one entry per iteration: {"iteration", "loss" (mean squared distance), "duration_ms"}
    iterations_: list[dict[str, float]] = field(init=False, repr=False, default_factory=list)

    def fit(self, X: np.ndarray, on_iteration: OnIteration | None = None) -> BqmlKMeans:
        """Train on ``X``. With ``on_iteration`` each Lloyd iteration is reported as it ends (a job's progress),
        and ``iterations_`` keeps them all: on the default path (KMEANS++, EUCLIDEAN, no EARLY_STOP) the
        iterations are scikit-learn's own, stepped one by one (:meth:`_stepped_sklearn`), so the clusters are
        those of the single ``KMeans.fit`` that runs without a callback (`hyp train`)."""
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
        self._check_options()
        sklearn_path = self.init_method == "KMEANS++" and self.distance_type == "EUCLIDEAN"
        if sklearn_path and self.min_rel_progress is None and on_iteration is not None:
            labels, found = self._stepped_sklearn(Z, on_iteration)
        elif sklearn_path and self.min_rel_progress is None:
            started = time.perf_counter()
            km = KMeans(
                n_clusters=self.num_clusters,
                init="k-means++",
                n_init=1,
                max_iter=self.max_iterations,
                random_state=self.seed,
                algorithm="lloyd",
            ).fit(Z)
            labels, found = km.labels_, km.cluster_centers_
            elapsed = (time.perf_counter() - started) * 1000
            loss = float(km.inertia_) / len(Z)
            self.iterations_ = [{"iteration": int(km.n_iter_) - 1, "loss": loss, "duration_ms": elapsed}]
        else:
            labels = self._lloyd(Z, self._initial(Z), on_iteration)
            found = self.centroids_
        sizes = np.bincount(labels, minlength=self.num_clusters)
        order = np.argsort(-sizes, kind="stable")  # id 1 = the largest cluster
        self.centroids_ = found[order]
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

    def _check_options(self) -> None:
        if self.init_method not in ("KMEANS++", "RANDOM", "CUSTOM"):
            raise ModelInputError(f"KMEANS_INIT_METHOD must be KMEANS++, RANDOM or CUSTOM, got {self.init_method}")
        if self.distance_type not in ("EUCLIDEAN", "COSINE"):
            raise ModelInputError(f"DISTANCE_TYPE must be EUCLIDEAN or COSINE, got {self.distance_type}")
        if (self.init_method == "CUSTOM") != (self.init_centroids is not None):
            raise ModelInputError("KMEANS_INIT_METHOD='CUSTOM' goes with initial centroids, and only it")
        if self.init_centroids is not None and len(self.init_centroids) != self.num_clusters:
            raise ModelInputError(
                f"CUSTOM initialisation needs NUM_CLUSTERS={self.num_clusters} initial centroids, "
                f"got {len(self.init_centroids)}"
            )

    def _initial(self, Z: np.ndarray) -> np.ndarray:
        """Initial centroids in the standardised space."""
        if self.init_method == "CUSTOM":
            assert self.init_centroids is not None
            return self._standardise(self.init_centroids)
        if self.init_method == "RANDOM":
            rows = np.random.default_rng(self.seed).choice(len(Z), self.num_clusters, replace=False)
            return Z[rows].copy()
        from sklearn.cluster import kmeans_plusplus

        return kmeans_plusplus(Z, self.num_clusters, random_state=self.seed)[0]

    def _stepped_sklearn(self, Z: np.ndarray, on_iteration: OnIteration) -> tuple[np.ndarray, np.ndarray]:
        """scikit-learn's ``KMeans(init="k-means++", n_init=1, algorithm="lloyd").fit(Z)`` one iteration at a
        time, through the same internal steps in the same order (its k-means++ draw, its Lloyd step, its strict
        and tolerance convergence, its final assignment), so each iteration can be reported; the labels and the
        centroids. tests/models/test_kmeans_progress.py checks that both give the same clusters."""
        from sklearn.cluster._k_means_common import _inertia_dense
        from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense
        from sklearn.cluster._kmeans import _kmeans_plusplus, _tolerance
        from sklearn.utils import check_random_state
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
        from sklearn.utils.extmath import row_norms
        from sklearn.utils.parallel import _get_threadpool_controller

        X = np.array(Z, dtype=np.float64, order="C", copy=True)
        tol = _tolerance(X, SKLEARN_TOL)
        weights = np.ones(len(X), dtype=X.dtype)
        threads = _openmp_effective_n_threads()
        mean = X.mean(axis=0)
        X -= mean  # as KMeans.fit: distances about the data's mean are more accurate
        centers, _ = _kmeans_plusplus(
            X, self.num_clusters, x_squared_norms=row_norms(X, squared=True), sample_weight=weights,
            random_state=check_random_state(self.seed),
        )  # fmt: skip
        new = np.zeros_like(centers)
        labels = np.full(len(X), -1, dtype=np.int32)
        previous = labels.copy()
        in_cluster = np.zeros(self.num_clusters, dtype=X.dtype)
        shift = np.zeros(self.num_clusters, dtype=X.dtype)
        self.iterations_, strict = [], False
        total = float(np.einsum("ij,ij->", X, X))  # sum of |x|^2: each iteration's loss from its own sums
        with _get_threadpool_controller().limit(limits=1, user_api="blas"):
            for iteration in range(self.max_iterations):
                started = time.perf_counter()
                lloyd_iter_chunked_dense(X, weights, centers, new, in_cluster, labels, shift, threads)
                if np.array_equal(np.bincount(labels, minlength=self.num_clusters), in_cluster):
                    loss = _step_loss(total, centers, new, in_cluster) / len(X)
                else:  # scikit-learn moved a row into an empty cluster: the sums no longer match the labels
                    loss = float(_inertia_dense(X, weights, centers, labels, threads)) / len(X)
                centers, new = new, centers
                entry = {"iteration": iteration, "loss": loss, "duration_ms": (time.perf_counter() - started) * 1000}
                self.iterations_.append(entry)
                on_iteration(entry)
                if np.array_equal(labels, previous):
                    strict = True
                    break
                if (shift**2).sum() <= tol:
                    break
                previous[:] = labels
            if not strict:  # the labels of the last centres, as scikit-learn assigns them after its loop
                lloyd_iter_chunked_dense(X, weights, centers, centers, in_cluster, labels, shift, threads, False)
        return labels, centers + mean

    def _lloyd(self, Z: np.ndarray, centroids: np.ndarray, on_iteration: OnIteration | None = None) -> np.ndarray:
        """Lloyd iterations from ``centroids`` (early stop on relative loss progress); the labels."""
        self.centroids_ = np.array(centroids, dtype=np.float64)
        self.iterations_, previous = [], None
        rows = np.arange(len(Z))
        for iteration in range(self.max_iterations):
            started = time.perf_counter()
            distances = self._distances_std(Z)
            labels = distances.argmin(axis=1)
            loss = float((distances[rows, labels] ** 2).mean())
            before = self.centroids_.copy()
            for c in range(self.num_clusters):
                members = labels == c
                if members.any():
                    self.centroids_[c] = Z[members].mean(axis=0)
            elapsed = (time.perf_counter() - started) * 1000
            self.iterations_.append({"iteration": iteration, "loss": loss, "duration_ms": elapsed})
            if on_iteration is not None:
                on_iteration(self.iterations_[-1])
            if self._stalled(previous, loss):
                break
            if np.array_equal(before, self.centroids_):  # converged: the next iteration would repeat this one
                break
            previous = loss
        return np.asarray(self._distances_std(Z).argmin(axis=1))

    def _stalled(self, previous: float | None, loss: float) -> bool:
        """EARLY_STOP: the last iteration lowered the loss by less than MIN_REL_PROGRESS of it."""
        if previous is None or self.min_rel_progress is None:
            return False
        return previous <= 0 or (previous - loss) / previous < self.min_rel_progress

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_

    def _distances_std(self, Z: np.ndarray) -> np.ndarray:
        if self.distance_type == "COSINE":  # 1 - cos(z, c); a zero vector is at distance 1 from everything
            norms = np.linalg.norm(Z, axis=1)[:, None] * np.linalg.norm(self.centroids_, axis=1)[None, :]
            cos = np.divide(Z @ self.centroids_.T, norms, out=np.zeros((len(Z), len(self.centroids_))), where=norms > 0)
            return np.asarray(1.0 - cos)
        # |z - c|^2 = |z|^2 - 2 z.c + |c|^2, clipped at 0 for rounding; (n, k)
        sq = (Z * Z).sum(axis=1)[:, None] - 2.0 * Z @ self.centroids_.T + (self.centroids_**2).sum(axis=1)[None, :]
        return np.sqrt(np.maximum(sq, 0.0))

    def distances(self, X: np.ndarray) -> np.ndarray:
        """Euclidean distance of every row to every centroid (column j = centroid id j+1), :func:`block_rows`
        rows at a time."""
        X = np.asarray(X, dtype=np.float64)
        k = len(self.centroids_)
        step = block_rows(X.shape[1] if X.ndim == 2 else 1, k)
        if len(X) <= step:
            return self._distances_std(self._standardise(X))
        d = np.empty((len(X), k))
        for start in range(0, len(X), step):
            d[start : start + step] = self._distances_std(self._standardise(X[start : start + step]))
        return d

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
