"""Vertex's prebuilt-container artifacts loaded and answered in process, without a server: each framework's
files as its container reads them, and what is refused (naming the file or the image)."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import orjson
import pytest

from services.endpoint.resources.artifacts import Storage
from services.endpoint.resources.errors import ApiError
from services.endpoint.resources.prebuilt import load_prebuilt

pytestmark = pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/training/exporting-model-artifacts")

XGBOOST_IMAGE = "europe-docker.pkg.dev/vertex-ai/prediction/xgboost-cpu.2-1:latest"
TF_IMAGE = "europe-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
SKLEARN_IMAGE = "europe-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-5:latest"
X = [[0.5, 1.0], [-1.0, -0.5], [2.0, -3.0]]


def training() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    features = rng.normal(size=(300, 2))
    return features, (features[:, 0] + features[:, 1] > 0).astype(int)


def predict(image: str, folder: str, instances: list) -> list:
    return orjson.loads(load_prebuilt(image, folder, Storage(None)).predict_json(instances))


@pytest.mark.parametrize("filename", ["model.bst", "model.joblib", "model.pkl"])
def test_xgboost_artifacts_answer_as_the_booster_does(tmp_path, filename):
    import xgboost

    features, labels = training()
    booster = xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(features, label=labels), 5)
    expected = booster.predict(xgboost.DMatrix(np.array(X))).tolist()
    if filename == "model.bst":
        booster.save_model(tmp_path / filename)
    elif filename == "model.joblib":
        joblib.dump(booster, tmp_path / filename)
    else:
        (tmp_path / filename).write_bytes(pickle.dumps(booster))
    assert predict(XGBOOST_IMAGE, str(tmp_path), X) == pytest.approx(expected)


def test_an_xgboost_scikit_learn_estimator_answers_its_classes(tmp_path):
    import xgboost

    features, labels = training()
    classifier = xgboost.XGBClassifier(n_estimators=5).fit(features, labels)
    joblib.dump(classifier, tmp_path / "model.joblib")
    assert predict(XGBOOST_IMAGE, str(tmp_path), X) == classifier.predict(np.array(X)).tolist()


def test_a_saved_model_answers_rows_of_its_one_output_or_objects_of_several(tmp_path):
    import tensorflow as tf

    class Linear(tf.Module):
        def __init__(self) -> None:
            self.w = tf.Variable([[1.0], [2.0]])

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def one(self, x):
            return {"score": tf.matmul(x, self.w)}

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def two(self, x):
            score = tf.matmul(x, self.w)
            return {"score": score, "positive": score > 0}

    module = Linear()
    tf.saved_model.save(module, str(tmp_path / "one"), signatures={"serving_default": module.one})
    tf.saved_model.save(module, str(tmp_path / "two"), signatures={"serving_default": module.two})
    assert predict(TF_IMAGE, str(tmp_path / "one"), X) == [[2.5], [-2.0], [-4.0]]
    assert predict(TF_IMAGE, str(tmp_path / "one"), [{"x": row} for row in X]) == [[2.5], [-2.0], [-4.0]]
    assert predict(TF_IMAGE, str(tmp_path / "two"), X[:2]) == [
        {"score": [2.5], "positive": [True]},
        {"score": [-2.0], "positive": [False]},
    ]
    with pytest.raises(ApiError, match="instances: ") as caught:
        predict(TF_IMAGE, str(tmp_path / "one"), [[1.0, 2.0, 3.0]])  # three features for two
    assert caught.value.status == "INVALID_ARGUMENT"


def test_what_cannot_be_served_is_refused_naming_it(tmp_path):
    (tmp_path / "model.bst").write_bytes(b"not a booster")
    with pytest.raises(ApiError, match=r"model\.bst: cannot be loaded") as caught:
        load_prebuilt(XGBOOST_IMAGE, str(tmp_path), Storage(None))
    assert caught.value.status == "INVALID_ARGUMENT"
    joblib.dump({"weights": [1, 2]}, tmp_path / "model.joblib")
    (tmp_path / "model.bst").unlink()
    with pytest.raises(ApiError, match=r"model\.joblib: cannot be loaded .*holds a dict"):
        load_prebuilt(SKLEARN_IMAGE, str(tmp_path), Storage(None))
    (tmp_path / "saved_model.pb").write_bytes(b"not a graph")
    with pytest.raises(ApiError, match=f"{tmp_path}: cannot be loaded"):
        load_prebuilt(TF_IMAGE, str(tmp_path), Storage(None))
    torch = "us-docker.pkg.dev/vertex-ai/prediction/pytorch-cpu.2-4:latest"
    with pytest.raises(ApiError, match=r"prebuilt `pytorch` images are not served here \(sklearn, tf, tf2, xgboost"):
        load_prebuilt(torch, str(tmp_path), Storage(None))
    with pytest.raises(ApiError, match="not one of Vertex's prebuilt prediction images"):
        load_prebuilt("my-registry/server:1", str(tmp_path), Storage(None))
