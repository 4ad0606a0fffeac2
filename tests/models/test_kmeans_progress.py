"""Per-iteration progress of BqmlKMeans.fit: the callback sees every Lloyd iteration as it ends, and reporting
them changes nothing about the model (`hyp train` fits without a callback, CREATE MODEL with one).

Local only: the iteration details are this engine's (scikit-learn's Lloyd steps), not BigQuery ML's.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from models.kmeans import BqmlKMeans


def _blobs(rows: int, features: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    half = rows // 2
    return np.vstack([rng.normal(size=(half, features)), rng.normal(3.0, 1.5, size=(rows - half, features))])


@pytest.mark.parametrize(("rows", "features", "clusters", "seed"), [(400, 2, 2, 0), (3000, 4, 4, 1), (2000, 3, 3, 7)])
def test_reported_iterations_leave_the_clusters_of_the_unreported_fit(
    rows: int, features: int, clusters: int, seed: int
) -> None:
    X = _blobs(rows, features, seed)
    plain = BqmlKMeans(num_clusters=clusters, seed=seed).fit(X)
    seen: list[dict[str, float]] = []
    stepped = BqmlKMeans(num_clusters=clusters, seed=seed).fit(X, on_iteration=seen.append)
    np.testing.assert_allclose(stepped.centroids_, plain.centroids_, rtol=1e-12, atol=1e-12)
    assert stepped.cluster_sizes_.tolist() == plain.cluster_sizes_.tolist()
    np.testing.assert_allclose(stepped.nd_quantiles_, plain.nd_quantiles_, rtol=1e-9)
    assert [e["iteration"] for e in seen] == list(range(len(seen)))
    assert seen == stepped.iterations_
    assert seen[-1]["iteration"] == plain.iterations_[0]["iteration"]  # scikit-learn's n_iter_ - 1
    # an iteration's loss is that of its assignment, before its centres move: at least the fit's final loss
    assert seen[-1]["loss"] >= plain.iterations_[0]["loss"] - 1e-12


def test_the_loss_never_rises_and_max_iterations_bounds_the_reports() -> None:
    X = _blobs(3000, 4, 3)
    seen: list[dict[str, float]] = []
    BqmlKMeans(num_clusters=5, seed=3, max_iterations=2).fit(X, on_iteration=seen.append)
    assert [e["iteration"] for e in seen] == [0, 1]
    full: list[dict[str, float]] = []
    BqmlKMeans(num_clusters=5, seed=3).fit(X, on_iteration=full.append)
    losses = [e["loss"] for e in full]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(losses))
    assert all(e["duration_ms"] >= 0 for e in full)


def test_hand_checkable_iterations_of_the_own_lloyd_path() -> None:
    """RANDOM init on 0, 1, 2 | 10, 11 without standardising: from centroids 0 and 1 (rows 0 and 1 drawn or
    not, the loss of each reported iteration is the mean squared distance to the nearest centroid then)."""
    X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    seen: list[dict[str, float]] = []
    model = BqmlKMeans(
        num_clusters=2, standardize_features=False, init_method="CUSTOM", init_centroids=np.array([[0.0], [1.0]])
    ).fit(X, on_iteration=seen.append)
    # iteration 0: centroids 0 and 1; nearest distances 0, 0, 1, 9, 10 -> loss (0+0+1+81+100)/5
    assert seen[0] == {"iteration": 0, "loss": pytest.approx(182 / 5), "duration_ms": seen[0]["duration_ms"]}
    # iteration 1: centroids 0 and 6 (1, 2, 10, 11): distances 0, 1, 2, 4, 5 -> (0+1+4+16+25)/5
    assert seen[1]["loss"] == pytest.approx(46 / 5)
    assert seen == model.iterations_
    assert sorted(model.centroids_.ravel().tolist()) == pytest.approx([1.0, 10.5])
