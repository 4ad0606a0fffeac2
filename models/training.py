"""Training, evaluation, registration and the champion/challenger gate, as plain functions.

``fit`` is pure (no MLflow): validate the rows, compute features, fit the detector, decide the
threshold. ``evaluate_model`` scores a held-out labelled set. ``log_and_register`` logs one run
(params, metrics overall and per kind, the pyfunc with signature, input example and pinned
requirements), registers a version with its threshold and cluster mapping as tags, and moves
``@champion`` only when the gate says so. All input is checked before anything is logged, so bad
input registers nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models import detectors
from models.detectors import KMeansDetector
from models.errors import ModelInputError
from models.evaluation import choose_threshold, evaluate, labels_of
from models.features import as_frame, features, fill_missing

log = logging.getLogger(__name__)

CONTROL_PARAMS = ("threshold", "fit_on", "contamination")


@dataclass
class Trained:
    model: Any  # models.pyfunc.AnomalyModel
    kind: str
    params: dict[str, Any]
    threshold: float
    threshold_method: str
    fit_rows: int
    train_seconds: float
    cluster_mapping: dict[str, Any] | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def validate_rows(frame: pd.DataFrame, min_rows: int, what: str = "training set") -> None:
    """One clear error each: empty, too small, missing columns, NaN or infinite values."""
    if len(frame) == 0:
        raise ModelInputError(f"{what} is empty (0 rows)")
    if len(frame) < min_rows:
        raise ModelInputError(f"{what} has {len(frame)} rows; at least {min_rows} are needed")
    features(frame, ("tax", "shipping", "value"))  # raises on missing columns, NaN or inf


def split(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random (first, second) split with ``fraction`` of the rows in the second part."""
    rng = np.random.default_rng(seed)
    mask = rng.random(len(frame)) < fraction
    return frame[~mask], frame[mask]


def _fill_values(X: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        cols = [np.nanmedian(c) if np.isfinite(c).any() else 0.0 for c in X.T]
    return np.asarray(cols, dtype=np.float64)


def fit(
    kind: str,
    rows: Any,
    params: dict[str, Any] | None = None,
    *,
    seed: int = 42,
    unsupervised: bool = False,
    min_rows: int = 200,
) -> Trained:
    """Fit one model kind and decide its threshold; ModelInputError for bad input."""
    from models.pyfunc import AnomalyModel

    detectors.get(kind)  # an unknown kind fails before the rows are looked at
    frame = as_frame(rows)
    validate_rows(frame, min_rows)
    params = dict(params or {})
    control = {k: params.pop(k) for k in CONTROL_PARAMS if k in params}
    labelled = None if unsupervised else labels_of(frame)
    bqml_like = kind == "kmeans"
    fit_on = control.get("fit_on", "all" if (bqml_like or labelled is None) else "normal")
    method = control.get("threshold", "contamination" if (bqml_like or labelled is None) else "f1")
    contamination = float(control.get("contamination", 0.01))
    if fit_on not in ("all", "normal") or method not in ("f1", "contamination"):
        raise ModelInputError("params: fit_on must be all|normal and threshold must be f1|contamination")
    if kind == "envelope" and fit_on == "all":
        # the rows include anomalies: the envelope is the inner quantile range, not the min-max
        params.setdefault("quantile", contamination / 2)
    detector = detectors.build(kind, params)
    if labelled is None and (fit_on == "normal" or method == "f1"):
        raise ModelInputError("fit_on=normal and threshold=f1 need labelled rows (an anomaly column)")

    X = features(frame, detector.columns).to_numpy(dtype=np.float64)
    fill = _fill_values(X)
    X = fill_missing(X, fill)
    y = labelled[0] if labelled is not None else None
    everything = np.ones(len(X), dtype=bool)
    normal = (y == 0) if (fit_on == "normal" and y is not None) else everything
    if method == "f1":
        rng = np.random.default_rng(seed)
        cal = rng.random(len(X)) < 0.25
        fit_mask = ~cal & normal
    else:
        cal, fit_mask = everything, normal
    if fit_mask.sum() < min(min_rows, 10):
        raise ModelInputError(f"training set has only {int(fit_mask.sum())} rows to fit on")
    started = time.perf_counter()
    detector.fit(X[fit_mask])
    seconds = time.perf_counter() - started
    if method == "f1" and y is not None:
        threshold, how = choose_threshold(detector.score(X[cal]), y[cal])
    elif isinstance(detector, KMeansDetector):
        threshold, how = detector.contamination_threshold(contamination), f"BQML contamination={contamination}"
    else:
        threshold, how = choose_threshold(detector.score(X[fit_mask]), None, contamination)
    mapping = detector.cluster_mapping(y, X) if isinstance(detector, KMeansDetector) else None
    info = {
        "kind": kind,
        "threshold": threshold,
        "threshold_method": how,
        "fit_on": fit_on,
        "features": detector.columns,
    }
    model = AnomalyModel(detector, threshold, fill, info)
    all_params = {**detector.describe(), "fit_on": fit_on, "threshold_method": method, "contamination": contamination}
    return Trained(model, kind, all_params, threshold, how, int(fit_mask.sum()), seconds, mapping)


def evaluate_model(model: Any, rows: Any) -> dict[str, float]:
    """Metrics of a fitted AnomalyModel (or anything with score_rows) on labelled rows."""
    frame = as_frame(rows)
    labelled = labels_of(frame)
    if labelled is None:
        raise ModelInputError("evaluation set has no labels (an anomaly column with 0/1 on every row)")
    out = model.score_rows(frame)
    return evaluate(*labelled, out["score"].to_numpy(), out["is_anomaly"].to_numpy())


def fingerprint(rows: pd.DataFrame) -> str:
    data = np.ascontiguousarray(features(rows, ("tax", "shipping", "value")).to_numpy())
    return hashlib.sha256(data.tobytes()).hexdigest()[:16]


def search(
    kind: str, rows: pd.DataFrame, trials: int, *, seed: int, metric: str, base_params: dict[str, Any], min_rows: int
) -> dict[str, Any]:
    """Random search: each trial a child MLflow run scored on a validation split; return the best params."""
    import mlflow

    space = detectors.get(kind).search_space
    if not space:
        log.info("no search space for %s; using the given parameters", kind)
        return base_params
    train_part, valid_part = split(rows, 0.25, seed + 7)
    rng = np.random.default_rng(seed)
    best: tuple[float, dict[str, Any]] = (-np.inf, base_params)
    for t in range(trials):
        params = {**base_params, **{k: v[int(rng.integers(len(v)))] for k, v in space.items()}}
        with mlflow.start_run(run_name=f"{kind}-trial-{t}", nested=True):
            trained = fit(kind, train_part, params, seed=seed, min_rows=min_rows)
            metrics = evaluate_model(trained.model, valid_part)
            mlflow.log_params({k: str(v) for k, v in params.items()})
            mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        if metrics.get(metric, -np.inf) > best[0]:
            best = (metrics[metric], params)
    log.info("search: best %s=%.4f with %s", metric, best[0], best[1])
    return best[1]


@dataclass
class Registered:
    trained: Trained
    run_id: str
    version: str | None
    promoted: bool
    reason: str
    champion_metrics: dict[str, float] | None = None


def champion_metrics_on(tracking_uri: str | None, model_name: str, eval_rows: pd.DataFrame) -> tuple[str | None, Any]:
    """(champion version, its metrics on ``eval_rows``), or (None, None) without a champion."""
    from models import registry

    c = registry.client(tracking_uri)
    version = registry.champion_version(c, model_name)
    if version is None:
        return None, None
    model = registry.unwrap(registry.load_version(tracking_uri, model_name, version))
    return version, evaluate_model(model, eval_rows)


def log_and_register(
    trained: Trained,
    eval_rows: pd.DataFrame,
    *,
    tracking_uri: str | None,
    experiment: str,
    model_name: str,
    promote: str = "gate",  # gate | force | never
    metric: str = "f1",
    min_delta: float = 0.0,
    register: bool = True,
    extra_params: dict[str, Any] | None = None,
    run_name: str | None = None,
    parent_run: bool = False,
) -> Registered:
    """Log the run, register a version and apply the champion/challenger gate."""
    import mlflow

    from models import registry
    from models.pyfunc import log_model

    if not trained.metrics:
        trained.metrics = evaluate_model(trained.model, eval_rows)
    if metric not in trained.metrics:
        raise ModelInputError(f"promotion metric {metric!r} unknown (have: precision, recall, f1, roc_auc, pr_auc)")
    eval_id = fingerprint(eval_rows)
    with registry.use_tracking_uri(tracking_uri):
        mlflow.set_experiment(experiment)
        active = mlflow.active_run() if parent_run else None
        ctx = mlflow.start_run(run_name=run_name or trained.kind) if active is None else _nullcontext(active)
        with ctx as run:
            mlflow.log_params({k: str(v)[:500] for k, v in {**trained.params, **(extra_params or {})}.items()})
            mlflow.log_params({"threshold": trained.threshold, "fit_rows": trained.fit_rows, "eval_set": eval_id})
            mlflow.log_metrics({k: float(v) for k, v in trained.metrics.items() if np.isfinite(v)})
            mlflow.log_metric("train_seconds", trained.train_seconds)
            mlflow.set_tags({"hyp.model_kind": trained.kind, "hyp.threshold_method": trained.threshold_method})
            if trained.cluster_mapping is not None:
                mlflow.log_dict(trained.cluster_mapping, "cluster_mapping.json")
            info = log_model(trained.model, registered_model_name=model_name if register else None)
            run_id = run.info.run_id
    if not register:
        return Registered(trained, run_id, None, False, "not registered (--no-register)")
    version = str(info.registered_model_version)
    c = registry.client(tracking_uri)
    tags = {
        "model_kind": trained.kind,
        "threshold": repr(trained.threshold),
        "threshold_method": trained.threshold_method,
        "features": ",".join(trained.model.detector.columns),
        "eval_set": eval_id,
        "eval_rows": str(len(eval_rows)),
        **{f"metric.{k}": f"{trained.metrics[k]:.6f}" for k in ("precision", "recall", "f1", "roc_auc", "pr_auc")},
    }
    if trained.cluster_mapping is not None:
        tags["cluster_mapping"] = json.dumps(trained.cluster_mapping)
    for key, value in tags.items():
        c.set_model_version_tag(model_name, version, key, value)
    if promote == "never":
        return Registered(trained, run_id, version, False, "registered without promotion")
    champion_version, champ = champion_metrics_on(tracking_uri, model_name, eval_rows)
    if promote == "force":
        ok, reason = True, f"forced promotion of v{version}"
    else:
        ok, reason = registry.gate(trained.metrics, champ, metric, min_delta)
        reason = f"{reason} (champion v{champion_version})" if champion_version else reason
    c.set_model_version_tag(model_name, version, "hyp.gate", reason)
    if ok:
        registry.set_champion(
            c, version, action="bootstrap" if champion_version is None else "promote", reason=reason, name=model_name
        )
    return Registered(trained, run_id, version, ok, reason, champ)


class _nullcontext:
    def __init__(self, value: Any):
        self.value = value

    def __enter__(self) -> Any:
        return self.value

    def __exit__(self, *exc: object) -> None:
        return None
