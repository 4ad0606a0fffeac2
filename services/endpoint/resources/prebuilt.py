"""Vertex's prebuilt prediction containers, served in process: scikit-learn, XGBoost and TensorFlow.

Each loads the file its container looks for (:data:`artifacts.MODEL_FILES`) and answers ``instances``
as that container does:

* scikit-learn: ``model.joblib`` (joblib) or ``model.pkl`` (pickle); ``predict(numpy.array(instances))``.
* XGBoost: ``model.bst`` (a Booster saved with ``save_model``), or a joblib / pickle of a Booster or of an
  XGBoost scikit-learn estimator; a Booster predicts a ``DMatrix`` of the instances.
* TensorFlow (``tf2-`` and ``tf-`` images): a SavedModel directory; its ``serving_default`` signature gets
  the instances (one tensor, or one per input name when instances are objects); with one output each
  prediction is that output's row, with several an object of them (TensorFlow Serving's row format).

Loading a pickle runs code from the artifact, exactly as the prebuilt containers do: deploy only
artifacts you trust.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from services.endpoint.resources import artifacts
from services.endpoint.resources.errors import ApiError, invalid


def encoded(out: Any) -> bytes:
    return orjson.dumps(np.asarray(out), option=orjson.OPT_SERIALIZE_NUMPY)


def matrix(instances: Sequence[Any], what: str) -> np.ndarray:
    """Instances as the prebuilt containers take them: rows of numbers (one number: one feature)."""
    try:
        X = np.asarray(instances, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise invalid(f"instances: expected lists of numbers for {what} model ({exc})") from None
    return X.reshape(-1, 1) if X.ndim == 1 else X


def kmeans_labels(estimator: Any) -> Callable[[np.ndarray], np.ndarray | None] | None:
    """``KMeans.predict`` (and ``MiniBatchKMeans.predict``) without its per-call checks, or None for others.

    scikit-learn's ``predict`` validates its input on every call (about 0.08 ms quiet, up to 0.9 ms on the
    loaded machine: narwhals' dataframe probes, feature names, dtype and finiteness checks) for a distance
    computation of a few microseconds. The returned function does what ``predict`` does once those checks
    would pass: the same private kernel ``predict`` calls (``_labels_inertia_threadpool_limit``, its BLAS
    limit included), the same centers, thread count and unit sample weights, so the labels are the same
    bit for bit. It returns None for any input the checks would change or refuse (wrong shape or dtype, no
    rows, NaN or infinity), and the caller then makes the plain ``predict`` call, which answers or raises as
    ever. Only these two exact classes (not subclasses, whose ``predict`` may differ), fitted on float64
    arrays without feature names (an estimator fitted on a DataFrame warns on unnamed input: plain call);
    anything else, or a scikit-learn without that kernel, gets None (the plain call every time).
    """
    try:
        from sklearn.cluster import KMeans, MiniBatchKMeans
        from sklearn.cluster._kmeans import _labels_inertia_threadpool_limit
    except ImportError:
        return None
    if type(estimator) not in (KMeans, MiniBatchKMeans) or hasattr(estimator, "feature_names_in_"):
        return None
    centers = getattr(estimator, "cluster_centers_", None)
    n_threads = getattr(estimator, "_n_threads", None)
    if (
        not isinstance(centers, np.ndarray)
        or centers.dtype != np.float64
        or centers.ndim != 2
        or not centers.flags.c_contiguous
        or getattr(estimator, "n_features_in_", None) != centers.shape[1]
        or not isinstance(n_threads, int)
    ):
        return None
    n_features = centers.shape[1]

    def labels(X: np.ndarray) -> np.ndarray | None:
        if (
            X.dtype != np.float64
            or X.ndim != 2
            or X.shape[0] == 0
            or X.shape[1] != n_features
            or not X.flags.c_contiguous
            or not np.isfinite(X).all()
        ):
            return None
        weights = np.ones(X.shape[0], dtype=X.dtype)  # what predict hands the kernel
        return _labels_inertia_threadpool_limit(X, weights, centers, n_threads=n_threads, return_inertia=False)  # type: ignore[no-any-return]

    return labels


@dataclass(frozen=True)
class SklearnModel:
    """A scikit-learn estimator (or anything with ``predict``): ``predict(numpy.array(instances))``.

    ``quick``: an equivalent of ``estimator.predict`` without its per-call input checks (:func:`kmeans_labels`),
    which answers None where the plain call must be made."""

    estimator: Any
    what: str = "a scikit-learn"
    quick: Callable[[np.ndarray], np.ndarray | None] | None = None

    def predict_rows(self, instances: Sequence[Any]) -> Any:
        X = matrix(instances, self.what)
        if self.quick is not None:
            out = self.quick(X)
            if out is not None:
                return out
        try:
            return self.estimator.predict(X)
        except ValueError as exc:
            raise invalid(f"instances: {exc}") from None

    def encode(self, out: Any) -> bytes:
        return encoded(out)

    def predict_json(self, instances: Sequence[Any]) -> bytes:
        return encoded(self.predict_rows(instances))


@dataclass(frozen=True)
class BoosterModel:
    """An XGBoost Booster: ``booster.predict(DMatrix(instances))``."""

    booster: Any

    def predict_rows(self, instances: Sequence[Any]) -> Any:
        import xgboost

        X = matrix(instances, "an XGBoost")
        try:
            return self.booster.predict(xgboost.DMatrix(X))
        except (ValueError, xgboost.core.XGBoostError) as exc:
            raise invalid(f"instances: {str(exc).splitlines()[0]}") from None

    def encode(self, out: Any) -> bytes:
        return encoded(out)

    def predict_json(self, instances: Sequence[Any]) -> bytes:
        return encoded(self.predict_rows(instances))


@dataclass(frozen=True)
class SavedModel:
    """A TensorFlow SavedModel's ``serving_default`` signature (the loaded object is kept alive with it)."""

    loaded: Any
    signature: Any

    def predict_json(self, instances: Sequence[Any]) -> bytes:
        import tensorflow as tf

        inputs = self.signature.structured_input_signature[1]  # name -> TensorSpec
        try:
            if instances and all(isinstance(i, dict) for i in instances):
                feed = {k: tf.constant([i[k] for i in instances], dtype=spec.dtype) for k, spec in inputs.items()}
            elif len(inputs) == 1:
                [(name, spec)] = inputs.items()
                feed = {name: tf.constant(list(instances), dtype=spec.dtype)}
            else:
                raise invalid(f"instances: the signature takes {', '.join(sorted(inputs))}; send objects of them")
            outputs = self.signature(**feed)
        except KeyError as exc:
            raise invalid(f"instances: input {exc} missing (the signature takes {', '.join(sorted(inputs))})") from None
        except (ValueError, TypeError, tf.errors.InvalidArgumentError) as exc:
            raise invalid(f"instances: {str(exc).splitlines()[0]}") from None
        columns = {k: v.numpy() for k, v in outputs.items()}
        if len(columns) == 1:
            return encoded(next(iter(columns.values())))
        rows = [{k: v[i] for k, v in columns.items()} for i in range(len(instances))]
        return orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY)


def unpickle(path: Path) -> Any:
    if path.suffix == ".joblib":
        import joblib

        return joblib.load(path)
    with open(path, "rb") as f:
        return pickle.load(f)


def load_xgboost(path: Path) -> Any:
    import xgboost

    if path.suffix == ".bst":
        return BoosterModel(xgboost.Booster(model_file=str(path)))
    model = unpickle(path)
    if isinstance(model, xgboost.Booster):
        return BoosterModel(model)
    if not hasattr(model, "predict"):
        raise TypeError(f"holds a {type(model).__name__}, not an XGBoost Booster or estimator")
    return SklearnModel(model, "an XGBoost")


def load_saved_model(folder: Path) -> SavedModel:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise TypeError(f"has no serving_default signature (it has: {', '.join(loaded.signatures) or 'none'})")
    return SavedModel(loaded, signature)


def load_sklearn(path: Path) -> SklearnModel:
    estimator = unpickle(path)
    if not hasattr(estimator, "predict"):
        raise TypeError(f"holds a {type(estimator).__name__}, which has no predict()")
    return SklearnModel(estimator, quick=kmeans_labels(estimator))


def load_prebuilt(image_uri: str, artifact_uri: str, storage: artifacts.Storage) -> Any:
    """Fetch and load a prebuilt container's artifact; INVALID_ARGUMENT naming the file that cannot be loaded."""
    kind = artifacts.framework(image_uri)
    if kind is None:
        raise ApiError("FAILED_PRECONDITION", f"`{image_uri}` is not one of Vertex's prebuilt prediction images")
    name = artifacts.model_file(image_uri, artifact_uri, storage)
    assert name is not None
    tensorflow = kind in ("tf", "tf2")
    with tempfile.TemporaryDirectory(prefix="hyp-vertex-model-") as tmp:
        folder = artifacts.fetch(artifact_uri, storage, Path(tmp), None if tensorflow else [name])
        try:
            if tensorflow:
                return load_saved_model(folder)
            if kind == "xgboost":
                return load_xgboost(folder / name)
            return load_sklearn(folder / name)
        except Exception as exc:
            where = artifact_uri if tensorflow else f"{artifact_uri}/{name}"
            raise invalid(f"{where}: cannot be loaded ({type(exc).__name__}: {exc})") from None
