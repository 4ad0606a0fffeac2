"""An AUTOENCODER model of BigQuery ML on the models package's Keras autoencoder
(models/detectors/autoencoder.py, the one `hyp train --model autoencoder` trains): HIDDEN_UNITS [h, c, h],
BATCH_SIZE, LEARN_RATE, MAX_ITERATIONS (epochs). The network is a ``.keras`` file in the model's folder,
the scaler and the training errors are in model.json. Functions: ML.PREDICT (``latent_col_1`` ..., the
code layer), ML.DETECT_ANOMALIES (``mean_squared_error`` of the reconstruction; anomalous above the
``1 - contamination`` quantile of the training rows' errors), ML.EVALUATE (``mean_absolute_error``,
``mean_squared_error``), ML.TRAINING_INFO (the loss and time of every epoch, each also in the running job's
``iterationResults`` as it ends).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from services.bigquery.ml import encoding, progress
from services.bigquery.ml.kmeans import _impute, _with_inputs
from services.bigquery.schema import Field
from services.bigquery.sql import invalid_query

QUANTILE_LEVELS = 10001
_loaded: OrderedDict[str, Any] = OrderedDict()  # .keras path -> detector (file names are unique per training)
_lock = threading.Lock()


def train(params: dict[str, Any], fields: tuple[Field, ...], rows: pa.Table) -> tuple[dict[str, Any], Any]:
    """Fit; (the JSON-ready state, the fitted detector whose network the caller saves)."""
    from models.detectors.autoencoder import AutoencoderDetector

    features = encoding.training(fields, rows, None, "AUTOENCODER")
    X = encoding.encode(features, rows, "CREATE_MODEL")
    if len(X) < 2:
        raise invalid_query("CREATE MODEL: AUTOENCODER needs at least 2 training rows.")
    with np.errstate(all="ignore"):
        fill = np.array([np.nanmean(c) if np.isfinite(c).any() else 0.0 for c in X.T])
    info = encoding.feature_info(features, X)
    X = _impute(X, fill)
    epochs: list[dict[str, float]] = []
    report = progress.current()  # each epoch in the job's statistics as it ends; a cancel stops the training

    def on_epoch(entry: dict[str, float]) -> None:
        epochs.append(entry)
        report.iteration(entry)

    detector = AutoencoderDetector(params=dict(params)).fit(X, on_epoch=on_epoch)
    errors = detector.score(X)
    state: dict[str, Any] = {
        "model_type": "AUTOENCODER",
        "features": features,
        "fill": fill.tolist(),
        "feature_info": info,
        "autoencoder": {
            "params": {k: v for k, v in detector.params.items() if k != "device"},
            "center": detector.center_.tolist(),
            "scale": detector.scale_.tolist(),
            "error_quantiles": np.quantile(errors, np.linspace(0.0, 1.0, QUANTILE_LEVELS)).tolist(),
        },
        "evaluation": _metrics(detector, X),
        "iterations": [dict(e) for e in epochs],  # ML.TRAINING_INFO: one row per epoch
    }
    return state, detector


def _metrics(detector: Any, X: np.ndarray) -> dict[str, float]:
    Z = detector._prep(X)
    recon = detector.model.predict(Z, batch_size=65536, verbose=0)
    return {
        "mean_absolute_error": float(np.abs(recon - Z).mean()),
        "mean_squared_error": float(((recon - Z) ** 2).mean()),
    }


def _detector(state: dict[str, Any], folder: Path) -> Any:
    from models.detectors.autoencoder import AutoencoderDetector

    path = str(folder / state["autoencoder"]["keras_file"])
    with _lock:
        if path in _loaded:
            _loaded.move_to_end(path)
            return _loaded[path]
    a = state["autoencoder"]
    detector = AutoencoderDetector(params=dict(a["params"]))
    detector.center_, detector.scale_ = np.asarray(a["center"]), np.asarray(a["scale"])
    detector.load(path)
    with _lock:
        _loaded[path] = detector
        while len(_loaded) > 8:
            _loaded.popitem(last=False)
    return detector


def _features(state: dict[str, Any], rows: pa.Table, function: str) -> np.ndarray:
    return _impute(encoding.encode(state["features"], rows, function), np.asarray(state["fill"]))


def predict(state: dict[str, Any], folder: Path, rows: pa.Table) -> pa.Table:
    from models.detectors.autoencoder import _tf

    detector = _detector(state, folder)
    model = detector.model
    encoder = _tf().keras.Model(model.inputs, model.layers[2].output)  # input, hidden, code
    latent = np.asarray(encoder.predict(detector._prep(_features(state, rows, "PREDICT")), batch_size=65536, verbose=0))
    out = {f"latent_col_{i + 1}": pa.array(latent[:, i].astype(np.float64)) for i in range(latent.shape[1])}
    return _with_inputs(out, rows)


def detect_anomalies(state: dict[str, Any], folder: Path, rows: pa.Table, contamination: float) -> pa.Table:
    if not 0.0 <= contamination < 0.5:
        raise invalid_query(f"ML.DETECT_ANOMALIES: contamination must be in [0, 0.5), got {contamination}")
    errors = _detector(state, folder).score(_features(state, rows, "DETECT_ANOMALIES"))
    levels = np.linspace(0.0, 1.0, QUANTILE_LEVELS)
    threshold = float(np.interp(1.0 - contamination, levels, np.asarray(state["autoencoder"]["error_quantiles"])))
    out = {"is_anomaly": pa.array(errors > threshold, pa.bool_()), "mean_squared_error": pa.array(errors, pa.float64())}
    return _with_inputs(out, rows)


def evaluation(state: dict[str, Any], folder: Path, rows: pa.Table | None) -> pa.Table:
    if rows is None:
        metrics = state["evaluation"]
    else:
        metrics = _metrics(_detector(state, folder), _features(state, rows, "EVALUATE"))
    return pa.table({k: pa.array([v], pa.float64()) for k, v in metrics.items()})
