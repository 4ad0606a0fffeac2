"""The deployed scikit-learn k-means' quick path (prebuilt.kmeans_labels): the same labels as
``estimator.predict`` bit for bit, and the plain call wherever the quick path does not know the estimator or
the input (same answer, same refusal)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.linear_model import LogisticRegression

from services.endpoint.resources.errors import ApiError
from services.endpoint.resources.prebuilt import SklearnModel, kmeans_labels, load_sklearn


def training(n: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(7)
    value = rng.uniform(5, 500, n)
    return np.column_stack([value * 0.19, rng.uniform(0, 10, n), value])


def probes() -> list[list[list[float]]]:
    """Requests of 1 to 300 rows (one and several chunks of the kernel), values near and far from the data,
    points halfway between two centers (ties), integers as JSON sends them."""
    rng = np.random.default_rng(11)
    X = training()
    out = [[list(map(float, row))] for row in X[:50]]
    out += [rng.uniform(-1e6, 1e6, (n, 3)).tolist() for n in (1, 2, 7, 63, 256, 257, 300)]
    out += [(X[rng.integers(0, len(X), n)] + rng.normal(0, 1e-9, (n, 3))).tolist() for n in (5, 64)]
    out.append([[0, 0, 0], [1, 2, 3], [10**6, -(10**6), 5]])
    return out


@pytest.mark.parametrize("cls", [KMeans, MiniBatchKMeans])
def test_the_quick_path_gives_predicts_labels_bit_for_bit(cls):
    estimator = cls(n_clusters=5, n_init=1, random_state=0).fit(training())
    quick = kmeans_labels(estimator)
    assert quick is not None
    model = SklearnModel(estimator, quick=quick)
    centers = estimator.cluster_centers_
    midpoint = ((centers[0] + centers[1]) / 2).tolist()
    for rows in [*probes(), [midpoint], [midpoint, centers[2].tolist()]]:
        expected = estimator.predict(np.asarray(rows, dtype=np.float64))
        got = quick(np.asarray(rows, dtype=np.float64))
        assert got is not None
        assert got.dtype == expected.dtype and np.array_equal(got, expected)
        assert model.predict_json(rows) == SklearnModel(estimator).predict_json(rows)


def test_input_the_checks_would_refuse_goes_to_the_plain_call_and_is_refused_the_same():
    estimator = KMeans(n_clusters=3, n_init=1, random_state=0).fit(training())
    quick, plain = SklearnModel(estimator, quick=kmeans_labels(estimator)), SklearnModel(estimator)
    for rows in ([[1.0, 2.0]], [[1.0, float("nan"), 2.0]], [[1.0, float("inf"), 2.0]], [], [[1.0], [2.0]]):
        with pytest.raises(ApiError) as a:
            quick.predict_rows(rows)
        with pytest.raises(ApiError) as b:
            plain.predict_rows(rows)
        assert a.value.message == b.value.message and "instances" in a.value.message
    assert quick.quick is not None and quick.quick(np.asarray([[1.0, 2.0]])) is None


class OwnKMeans(KMeans):
    def predict(self, X):  # a subclass's predict may differ: the quick path must not stand in for it
        return super().predict(X) + 100


def test_estimators_the_quick_path_does_not_know_get_the_plain_call():
    X = training(500)
    frame = pd.DataFrame(X, columns=["tax", "shipping", "value"])
    unknown = [
        OwnKMeans(n_clusters=3, n_init=1, random_state=0).fit(X),
        KMeans(n_clusters=3, n_init=1, random_state=0).fit(frame),  # feature names: predict warns on rows
        KMeans(n_clusters=3, n_init=1, random_state=0).fit(X.astype(np.float32)),  # float32 centers
        LogisticRegression().fit(X, (X[:, 2] > 250).astype(int)),
    ]
    for estimator in unknown:
        assert kmeans_labels(estimator) is None
    own = load_sklearn_from(unknown[0])
    assert own.quick is None and own.predict_rows([[1.0, 2.0, 3.0]])[0] >= 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        named = SklearnModel(unknown[1], quick=kmeans_labels(unknown[1]))
        assert np.array_equal(named.predict_rows([[1.0, 2.0, 3.0]]), unknown[1].predict(np.asarray([[1.0, 2.0, 3.0]])))


def load_sklearn_from(estimator) -> SklearnModel:
    """The estimator as a deployment loads it (a joblib file), so the quick path is chosen as in serving."""
    import tempfile
    from pathlib import Path

    import joblib

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        joblib.dump(estimator, path)
        return load_sklearn(path)


def test_a_loaded_kmeans_artifact_takes_the_quick_path():
    estimator = KMeans(n_clusters=4, n_init=1, random_state=0).fit(training())
    loaded = load_sklearn_from(estimator)
    assert loaded.quick is not None
    for rows in probes():
        assert np.array_equal(loaded.predict_rows(rows), estimator.predict(np.asarray(rows, dtype=np.float64)))
