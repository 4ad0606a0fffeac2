"""A KMEANS model of BigQuery ML over models/kmeans.py (the one trainer): train from a query's rows,
keep the state as JSON, and answer ML.PREDICT, ML.DETECT_ANOMALIES, ML.CENTROIDS, ML.EVALUATE,
ML.FEATURE_INFO and ML.TRAINING_INFO as Arrow tables in BigQuery's column names and types.

Distances are taken in the standardised space (STANDARDIZE_FEATURES), as BigQuery ML reports them;
a NULL feature is replaced by the feature's training mean, as BigQuery ML imputes numerical columns.

Scoring (ML.PREDICT, ML.DETECT_ANOMALIES, ML.EVALUATE over input rows) runs the model's own arithmetic
(models/kmeans.py) block by block (:func:`block_rows`): every output is computed row by row, so the values are
those of one call over all the rows, but each block's matrix product stays small enough for OpenBLAS to run it
on the calling thread. Over a million rows in one call OpenBLAS starts its threads, which on a busy machine
spin for their share and doubled the CPU a query cost (docs/bigquery.md, "BigQuery ML numbers").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from models.errors import ModelInputError
from models.kmeans import BqmlKMeans
from models.kmeans import block_rows as model_block_rows
from services.bigquery.ml import encoding, progress
from services.bigquery.ml.options import KMeansOptions
from services.bigquery.schema import Field
from services.bigquery.sql import invalid_query

_STATE = ("mean_", "scale_", "centroids_", "cluster_sizes_", "median_distance_", "nd_quantiles_")
NUMERIC = encoding.NUMERIC


def matrix(rows: pa.Table, names: list[str], function: str = "PREDICT") -> np.ndarray:
    """Numeric columns ``names`` as float64 columns, NULL as NaN; a missing column: BigQuery's error naming it."""
    return encoding.encode([{"name": n, "type": "FLOAT64"} for n in names], rows, function)


def _impute(X: np.ndarray, fill: np.ndarray) -> np.ndarray:
    missing = np.isnan(X)
    return np.where(missing, fill[None, :], X) if missing.any() else X


def train(
    options: KMeansOptions, fields: tuple[Field, ...], rows: pa.Table, previous: dict[str, Any] | None = None
) -> tuple[dict[str, Any], np.ndarray]:
    """Fit on the query's rows: the stored state (JSON-ready, with feature and training statistics) and the
    feature matrix it was fitted on (NULLs imputed). With ``previous`` (WARM_START, the existing model's
    state) Lloyd's iterations start from its centroids, and its training runs are kept before this one."""
    features = encoding.training(fields, rows, options.init_col, "KMEANS")
    if previous is not None:  # the existing model's features (and vocabularies): its centroids' columns
        _same_features(previous, features)
        features = previous["features"]
    X = encoding.encode(features, rows, "CREATE_MODEL")
    if len(X) == 0:
        raise invalid_query("The training query of CREATE MODEL returned no rows.")
    with np.errstate(all="ignore"):
        fill = np.array([np.nanmean(c) if np.isfinite(c).any() else 0.0 for c in X.T])
    info = encoding.feature_info(features, X)
    X = _impute(X, fill)
    init = None
    if options.init_col is not None:
        marks = [n for n in rows.column_names if n.lower() == options.init_col.lower()]
        if not marks or not pa.types.is_boolean(rows.column(marks[0]).type):
            raise invalid_query(f"KMEANS_INIT_COL {options.init_col} must be a BOOL column of the training query.")
        chosen = rows.column(marks[0]).fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
        init = X[chosen]
    init_method = options.init_method
    if previous is not None:  # the existing centroids, in training units (the new rows' scaler standardises them)
        init, init_method = np.asarray(_raw_centroids(previous["kmeans"])), "CUSTOM"
    model = BqmlKMeans(
        num_clusters=options.clusters_for(len(X)),
        standardize_features=options.standardize_features,
        max_iterations=options.max_iterations,
        init_method=init_method,
        init_centroids=init,
        distance_type=options.distance_type,
        min_rel_progress=options.min_rel_progress,
    )
    try:
        model.fit(X, on_iteration=progress.current().iteration)  # each iteration in the job's statistics
    except ModelInputError as exc:
        raise invalid_query(f"CREATE MODEL: {exc}") from None
    distances = model.distances(X)  # once, by blocks: evaluation, clusters
    state = {
        "model_type": "KMEANS",
        "features": features,
        "fill": fill.tolist(),
        "feature_info": info,
        "kmeans": {
            "num_clusters": model.num_clusters,
            "standardize_features": model.standardize_features,
            "max_iterations": model.max_iterations,
            "seed": model.seed,
            "distance_type": model.distance_type,
            **{key: getattr(model, key).tolist() for key in _STATE},
        },
        "iterations": model.iterations_,
        "evaluation": evaluate(model, X, distances),
        "clusters": _clusters(model, distances),
        "options": dict(options.given),
        "training_run": 0,
        "history": [],
    }
    if previous is not None:
        run = int(previous.get("training_run", 0))
        state["training_run"] = run + 1
        state["history"] = [*previous.get("history", []), {"training_run": run, "iterations": previous["iterations"]}]
    return state, X


def _raw_centroids(k: dict[str, Any]) -> list[list[float]]:
    scale, mean = np.asarray(k["scale_"]), np.asarray(k["mean_"])
    return (np.asarray(k["centroids_"]) * scale + mean).tolist()  # type: ignore[no-any-return]


def _same_features(previous: dict[str, Any], features: list[dict[str, Any]]) -> None:
    """WARM_START keeps the training data's schema: the same feature columns, same types."""
    before = {f["name"].lower(): f["type"] for f in previous["features"]}
    now = {f["name"].lower(): f["type"] for f in features}
    for name, kind in now.items():
        if name not in before:
            raise invalid_query(f"WARM_START: feature column {name} is not a feature of the existing model.")
        if before[name] != kind:
            raise invalid_query(f"WARM_START: feature column {name} was {before[name]}, now {kind}.")
    missing = [f["name"] for f in previous["features"] if f["name"].lower() not in now]
    if missing:
        raise invalid_query(f"WARM_START: feature column {missing[0]} of the existing model is missing.")


def restore(state: dict[str, Any]) -> BqmlKMeans:
    k = state["kmeans"]
    model = BqmlKMeans(
        num_clusters=k["num_clusters"],
        standardize_features=k["standardize_features"],
        max_iterations=k["max_iterations"],
        seed=k["seed"],
        distance_type=k["distance_type"],
    )
    for key in _STATE:
        setattr(model, key, np.asarray(k[key], dtype=np.int64 if key == "cluster_sizes_" else np.float64))
    return model


def evaluate(model: BqmlKMeans, X: np.ndarray | None, distances: np.ndarray | None = None) -> dict[str, float]:
    """ML.EVALUATE for k-means: Davies-Bouldin index and mean squared distance to the nearest centroid
    (``distances``: the rows' distances to the centroids, when the caller has them already; then ``X`` is
    not read)."""
    d = distances if distances is not None else model.distances(_given(X))
    nearest = d.argmin(axis=1)
    nearest_d = d[np.arange(len(d)), nearest]
    k = len(model.centroids_)
    spread = np.array([nearest_d[nearest == c].mean() if (nearest == c).any() else 0.0 for c in range(k)])
    between = model.distances(model.centroids_ * model.scale_ + model.mean_)
    ratios = []
    for i in range(k):
        others = [(spread[i] + spread[j]) / between[i, j] for j in range(k) if j != i and between[i, j] > 0]
        ratios.append(max(others) if others else 0.0)
    return {"davies_bouldin_index": float(np.mean(ratios)), "mean_squared_distance": float((nearest_d**2).mean())}


def _given(X: np.ndarray | None) -> np.ndarray:
    if X is None:
        raise ValueError("evaluate needs the rows' features or their distances")
    return X


def _clusters(model: BqmlKMeans, d: np.ndarray) -> list[dict[str, Any]]:
    nearest = d.argmin(axis=1)
    nearest_d = d[np.arange(len(d)), nearest]
    return [
        {
            "centroid_id": c + 1,
            "cluster_size": int((nearest == c).sum()),
            "cluster_radius": float(nearest_d[nearest == c].mean()) if (nearest == c).any() else 0.0,
        }
        for c in range(len(model.centroids_))
    ]


def _with_inputs(out: dict[str, pa.Array], rows: pa.Table) -> pa.Table:
    clash = [n for n in rows.column_names if n.lower() in {k.lower() for k in out}]
    if clash:
        raise invalid_query(f"The input data has a column named {clash[0]}, which the ML function's output also has.")
    return pa.table({**out, **{n: rows.column(n) for n in rows.column_names}})


def features_of(state: dict[str, Any], rows: pa.Table, function: str) -> np.ndarray:
    """The rows' encoded features for scoring (column-major: encoding.encode), NULLs imputed."""
    return _impute(encoding.encode(state["features"], rows, function, "F"), np.asarray(state["fill"]))


def block_rows(features: list[dict[str, Any]], clusters: int) -> int:
    """Rows encoded and scored at a time (models.kmeans.block_rows of the encoded width)."""
    return model_block_rows(sum(encoding.width(f) for f in features), clusters)


def _blocks(state: dict[str, Any], rows: pa.Table, function: str) -> Iterator[tuple[slice, np.ndarray]]:
    """(the rows' positions, their encoded features) block by block; one empty block for no rows, so an
    input error (a missing column, a bad contamination) is raised as for any other input."""
    step = block_rows(state["features"], int(state["kmeans"]["num_clusters"]))
    for start in range(0, max(rows.num_rows, 1), step):
        yield slice(start, start + step), features_of(state, rows.slice(start, step), function)


def row_distances(state: dict[str, Any], model: BqmlKMeans, rows: pa.Table, function: str) -> np.ndarray:
    """Every row's distance to every centroid (the model's ``distances``), computed block by block."""
    d = np.empty((rows.num_rows, len(model.centroids_)))
    for part, X in _blocks(state, rows, function):
        d[part] = model.distances(X)
    return d


def predict(state: dict[str, Any], rows: pa.Table) -> pa.Table:
    """ML.PREDICT: CENTROID_ID, NEAREST_CENTROIDS_DISTANCE (every centroid, nearest first), the input columns."""
    model = restore(state)
    d = row_distances(state, model, rows, "PREDICT")
    n, k = d.shape
    order = np.argsort(d, axis=1, kind="stable")
    distance = np.take_along_axis(d, order, axis=1)
    pairs = pa.StructArray.from_arrays(
        [pa.array((order + 1).ravel(), pa.int64()), pa.array(distance.ravel(), pa.float64())],
        names=["CENTROID_ID", "DISTANCE"],
    )
    nearest = pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k), pa.int32()), pairs)
    return _with_inputs(
        {"CENTROID_ID": pa.array(order[:, 0] + 1, pa.int64()), "NEAREST_CENTROIDS_DISTANCE": nearest}, rows
    )


def detect_anomalies(state: dict[str, Any], rows: pa.Table, contamination: float) -> pa.Table:
    """ML.DETECT_ANOMALIES: is_anomaly, normalized_distance, centroid_id, the input columns."""
    model = restore(state)
    n = rows.num_rows
    found = {"is_anomaly": np.empty(n, bool), "normalized_distance": np.empty(n), "centroid_id": np.empty(n, np.int64)}
    try:
        for part, X in _blocks(state, rows, "DETECT_ANOMALIES"):
            for key, values in model.detect_anomalies(X, contamination).items():
                found[key][part] = values
    except ModelInputError as exc:
        raise invalid_query(f"ML.DETECT_ANOMALIES: {exc}") from None
    out = {
        "is_anomaly": pa.array(found["is_anomaly"], pa.bool_()),
        "normalized_distance": pa.array(found["normalized_distance"], pa.float64()),
        "centroid_id": pa.array(found["centroid_id"], pa.int64()),
    }
    return _with_inputs(out, rows)


def centroids(state: dict[str, Any], standardize: bool) -> pa.Table:
    """ML.CENTROIDS: one row per centroid and feature (in training units unless standardize); a STRING
    feature's row has ``categorical_value`` (each category with the centroid's weight) instead of a number."""
    model = restore(state)
    values = model.centroids_ if standardize else model.centroids_ * model.scale_ + model.mean_
    ids: list[int] = []
    names: list[str] = []
    numbers: list[float | None] = []
    categorical: list[list[dict[str, Any]]] = []
    for c, row in enumerate(values):
        for f, columns in encoding.layout(state["features"]):
            ids.append(c + 1)
            names.append(f["name"])
            if "categories" in f:
                numbers.append(None)
                categorical.append(
                    [{"category": k, "value": float(v)} for k, v in zip(f["categories"], row[columns], strict=True)]
                )
            else:
                numbers.append(float(row[columns][0]))
                categorical.append([])
    category = pa.struct([("category", pa.string()), ("value", pa.float64())])
    return pa.table(
        {
            "centroid_id": pa.array(ids, pa.int64()),
            "feature": pa.array(names, pa.string()),
            "numerical_value": pa.array(numbers, pa.float64()),
            "categorical_value": pa.array(categorical, pa.list_(category)),
        }
    )


def evaluation(state: dict[str, Any], rows: pa.Table | None) -> pa.Table:
    """ML.EVALUATE: the training rows' metrics, or those of the given rows."""
    if rows is None:
        metrics = state["evaluation"]
    else:
        model = restore(state)
        metrics = evaluate(model, None, row_distances(state, model, rows, "EVALUATE"))
    return pa.table({k: pa.array([v], pa.float64()) for k, v in metrics.items()})


def feature_info(state: dict[str, Any]) -> pa.Table:
    info = state["feature_info"]
    kinds = {"input": pa.string(), "category_count": pa.int64(), "null_count": pa.int64(), "dimension": pa.int64()}
    keys = ("input", "min", "max", "mean", "median", "stddev", "category_count", "null_count", "dimension")
    return pa.table({k: pa.array([row[k] for row in info], kinds.get(k, pa.float64())) for k in keys})


def training_info(state: dict[str, Any]) -> pa.Table:
    """ML.TRAINING_INFO: one row per iteration the trainer reports, for every training run (a warm start is
    run 1, 2, ... and counts its iterations from 0 again); cluster_info on the latest run's last row."""
    runs = [
        *state.get("history", []),
        {"training_run": state.get("training_run", 0), "iterations": state["iterations"]},
    ]
    iterations = [it for run in runs for it in run["iterations"]]
    numbers = [int(run["training_run"]) for run in runs for _ in run["iterations"]]
    info = pa.struct([("centroid_id", pa.int64()), ("cluster_radius", pa.float64()), ("cluster_size", pa.int64())])
    last = len(iterations) - 1
    return pa.table(
        {
            "training_run": pa.array(numbers, pa.int64()),
            "iteration": pa.array([int(it["iteration"]) for it in iterations], pa.int64()),
            "loss": pa.array([it["loss"] for it in iterations], pa.float64()),
            "eval_loss": pa.array([None] * len(iterations), pa.float64()),
            "learning_rate": pa.array([None] * len(iterations), pa.float64()),
            "duration_ms": pa.array([round(it["duration_ms"]) for it in iterations], pa.int64()),
            "cluster_info": pa.array(
                [state.get("clusters", []) if i == last else [] for i in range(len(iterations))], pa.list_(info)
            ),
        }
    )
