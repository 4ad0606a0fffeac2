"""BQML-parity k-means: hand-checkable centroid ids, distances, normalized distance, contamination.

Local only: the numbers below are worked out by hand from the BQML docs' definitions (not
checked against BigQuery itself). Training rows 0, 1, 2 | 10, 11 give centroid 1 = 1.0 (three
rows, the larger cluster) and centroid 2 = 10.5; the training rows' distances to their nearest
centroid are [1, 0, 1] and [0.5, 0.5], so the per-centroid medians are 1.0 and 0.5.
"""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ModelInputError
from models.kmeans import BqmlKMeans

X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])


@pytest.fixture
def raw() -> BqmlKMeans:
    return BqmlKMeans(num_clusters=2, standardize_features=False, seed=0).fit(X)


def test_centroids_are_numbered_by_cluster_size(raw: BqmlKMeans) -> None:
    assert raw.centroids_.ravel().tolist() == pytest.approx([1.0, 10.5])
    assert raw.cluster_sizes_.tolist() == [3, 2]
    assert raw.median_distance_.tolist() == pytest.approx([1.0, 0.5])


def test_ml_predict_centroid_id_and_nearest_centroids_distance(raw: BqmlKMeans) -> None:
    ids, nearest = raw.predict(np.array([[4.0], [13.0]]))
    assert ids.tolist() == [1, 2]
    assert nearest[0] == [
        {"centroid_id": 1, "distance": pytest.approx(3.0)},
        {"centroid_id": 2, "distance": pytest.approx(6.5)},
    ]
    assert nearest[1] == [
        {"centroid_id": 2, "distance": pytest.approx(2.5)},
        {"centroid_id": 1, "distance": pytest.approx(12.0)},
    ]


def test_normalized_distance_divides_by_each_centroids_median(raw: BqmlKMeans) -> None:
    # x=4: min(3/1, 6.5/0.5) = 3 (centroid 1); x=13: min(12/1, 2.5/0.5) = 5 (centroid 2)
    ids, nd = raw.normalized(np.array([[4.0], [13.0], [1.0]]))
    assert ids.tolist() == [1, 2, 1]
    assert nd.tolist() == pytest.approx([3.0, 5.0, 0.0])


def test_contamination_threshold_is_the_training_quantile(raw: BqmlKMeans) -> None:
    # training normalized distances: [1, 0, 1, 1, 1]; the 0.8 quantile is 1.0, the 0.5 quantile 1.0, 0.0 -> max 1
    assert raw.contamination_threshold(0.2) == pytest.approx(1.0)
    out = raw.detect_anomalies(np.array([[4.0], [1.5], [10.5]]), contamination=0.2)
    assert out["is_anomaly"].tolist() == [True, False, False]
    assert out["normalized_distance"].tolist() == pytest.approx([3.0, 0.5, 0.0])
    with pytest.raises(ModelInputError, match="contamination"):
        raw.contamination_threshold(0.7)


def test_standardisation_uses_training_mean_and_sample_stddev() -> None:
    model = BqmlKMeans(num_clusters=2, standardize_features=True, seed=0).fit(X)
    std = np.sqrt(((X.ravel() - 4.8) ** 2).sum() / 4)
    assert model.mean_.tolist() == pytest.approx([4.8])
    assert model.scale_.tolist() == pytest.approx([std])
    assert model.distances(np.array([[4.0]])).ravel().tolist() == pytest.approx([3.0 / std, 6.5 / std])
    # normalized distance is scale-free: the same as without standardisation
    assert model.normalized(np.array([[4.0]]))[1].tolist() == pytest.approx([3.0])
    cents = {(c["centroid_id"], c["feature"]): c["numerical_value"] for c in model.centroids()}
    assert cents == {(1, 0): pytest.approx(1.0), (2, 0): pytest.approx(10.5)}


def test_too_few_rows_or_clusters_is_a_clear_error() -> None:
    with pytest.raises(ModelInputError, match="at least NUM_CLUSTERS=3"):
        BqmlKMeans(num_clusters=3).fit(X[:2])
    with pytest.raises(ModelInputError, match="at least 2"):
        BqmlKMeans(num_clusters=1).fit(X)


def test_distances_over_many_rows_are_scored_in_blocks_with_the_values_of_one_product() -> None:
    """More rows than a block (block_rows): each block's product stays on OpenBLAS's calling thread, and every
    row's distances are exactly those of one product over the whole matrix, each in its own place."""
    from models.kmeans import block_rows

    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(0.0, 1.0, (40_000, 3)), rng.normal(6.0, 2.0, (40_000, 3))])
    model = BqmlKMeans(num_clusters=4, seed=1).fit(X)
    assert block_rows(3, 4) < len(X)
    whole = model._distances_std(model._standardise(X))  # one product, as before blocks
    assert np.array_equal(model.distances(X), whole)
    assert np.array_equal(
        model.detect_anomalies(X, 0.01)["normalized_distance"], (whole / model.median_distance_).min(axis=1)
    )
