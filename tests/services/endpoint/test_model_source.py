"""The endpoint's scoring of the project's real pyfunc wrapper equals the wrapper's own scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.endpoint.instances import parse_vertex
from services.endpoint.model_source import served
from services.endpoint.serving import predict_rows


class Loaded:
    """What mlflow.pyfunc.load_model returns, reduced to the one method used."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def unwrap_python_model(self):
        return self.inner


@pytest.fixture(scope="module")
def kmeans_wrapper():
    from models.detectors import KMeansDetector
    from models.pyfunc import AnomalyModel

    rng = np.random.default_rng(3)
    value = rng.uniform(5, 500, 2000)
    X = np.column_stack([value * 0.19, rng.uniform(0, 10, 2000), value])
    detector = KMeansDetector().fit(X)
    scores = detector.score(X)
    return AnomalyModel(detector, float(np.quantile(scores, 0.99)), np.median(X, axis=0), {})


def test_columnar_fast_path_matches_score_rows(kmeans_wrapper):
    instances = [{"tax": 7.6, "shipping": 4.99, "value": 40.0}, {"tax": 7.6, "shipping": 4.99, "value": 1e6}]
    model = served(Loaded(kmeans_wrapper), version="7", name="purchase-anomaly")
    fast = predict_rows(model, parse_vertex({"instances": instances}, 10), vertex=False)
    reference = kmeans_wrapper.score_rows(pd.DataFrame(instances)).to_dict("records")
    assert [r.keys() for r in fast] == [r.keys() for r in reference]
    for got, want in zip(fast, reference, strict=True):
        assert got["is_anomaly"] == bool(want["is_anomaly"])
        assert got["score"] == pytest.approx(want["score"])
        assert got["nearest_centroid_id"] == want["nearest_centroid_id"]
        assert got["normalized_distance"] == pytest.approx(want["normalized_distance"])
    assert fast[1]["is_anomaly"] and not fast[0]["is_anomaly"]
