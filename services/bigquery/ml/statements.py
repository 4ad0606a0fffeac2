"""CREATE [OR REPLACE] MODEL [IF NOT EXISTS] ... OPTIONS(...) AS query, DROP MODEL [IF EXISTS] and
EXPORT MODEL (export.py).

Called from services/bigquery/statements.py for a statement whose kind is MODEL. The training query
runs like any query; the model is trained by the models package and stored in the dataset (store.py).
Everything is checked before training (options, name, dataset) so a refused statement leaves nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from sqlglot import exp

from services.bigquery import errors
from services.bigquery.catalog import Catalog
from services.bigquery.ml import autoencoder, encoding, kmeans, options, pca, progress, store, tracking, vertex
from services.bigquery.schema import Field
from services.bigquery.sql import invalid_query

Select = Callable[[exp.Expr], tuple[tuple[Field, ...], pa.Table]]


def model_ref(table: exp.Expr | None, project: str, default_dataset: str | None) -> store.ModelRef:
    if not isinstance(table, exp.Table) or not table.name:
        raise invalid_query("The statement names no model.")
    dataset = table.db or default_dataset
    if not dataset:
        raise invalid_query(f'Model "{table.name}" must be qualified with a dataset (e.g. dataset.model).')
    return store.ModelRef(table.catalog or project, dataset, store.check_model(table.name))


def run(catalog: Catalog, project: str, default_dataset: str | None, tree: exp.Expr, select: Select) -> str:
    """The statement's type (CREATE_MODEL, DROP_MODEL, EXPORT_MODEL) once done."""
    from services.bigquery.ml.parse import ExportModel

    if isinstance(tree, ExportModel):
        from services.bigquery.ml import export

        export.run(catalog, model_ref(tree.this, project, default_dataset), options.read(tree.args.get("options")))
        return "EXPORT_MODEL"
    if isinstance(tree, exp.Drop):
        ref = model_ref(tree.find(exp.Table), project, default_dataset)
        with store.LOCK:
            if not store.exists(catalog, ref):
                if tree.args.get("exists"):
                    return "DROP_MODEL"
                raise errors.not_found(f"Model {ref}")
            store.delete(catalog, ref)
        return "DROP_MODEL"
    if not isinstance(tree, exp.Create):
        raise invalid_query(f"Statement type {tree.key.upper()} MODEL is not supported by hyp bigquery.")
    return _create(catalog, project, default_dataset, tree, select)


def _create(catalog: Catalog, project: str, default_dataset: str | None, tree: exp.Create, select: Select) -> str:
    ref = model_ref(tree.this, project, default_dataset)
    given = options.read(tree.args.get("properties"))
    kind = options.model_type(given)
    default = {"KMEANS": 20, "AUTOENCODER": 30, "PCA": 1}[kind]  # MAX_ITERATIONS unset: the trainer's
    maximum = given.get("MAX_ITERATIONS") if kind != "PCA" else None
    progress.current().update(model_type=kind, max_iterations=maximum if isinstance(maximum, int) else default)
    if kind == "PCA":
        return _create_pca(catalog, ref, tree, options.pca(given), select)
    if kind == "AUTOENCODER":
        return _create_autoencoder(catalog, ref, tree, options.autoencoder(given), select, given)
    chosen = options.kmeans(given)
    uri: str | None = None
    previous: dict[str, Any] | None = None  # WARM_START: the existing model's document

    def prepare() -> None:  # before the training query runs: a registry that cannot be reached refuses it
        nonlocal uri, chosen, previous
        if chosen.warm_start:
            previous = _existing(catalog, ref)
            chosen = options.warm_kmeans(given, previous["state"])
        uri = vertex.tracking_uri() if chosen.registry == "VERTEX_AI" else None

    def train(fields: tuple[Field, ...], rows: pa.Table) -> tuple[dict[str, Any], Any]:
        state, X = kmeans.train(chosen, fields, rows, previous["state"] if previous else None)
        if uri is not None:
            vertex.check(state, uri)
        return state, X

    def save(trained: tuple[dict[str, Any], Any], location: str, started: float) -> None:
        state, X = trained
        if uri is not None:
            model_id = chosen.vertex_model_id or ref.model
            version = vertex.register(state, chosen, model_id, uri, X)
            state["registry"] = {"tracking_uri": uri, "model": model_id, "version": version}
        resource = _resource(ref, location, chosen, state, started)
        if previous is not None:  # a warm start adds a training run to the model's
            resource["trainingRuns"] = [*previous["resource"].get("trainingRuns", []), *resource["trainingRuns"]]
            resource["creationTime"] = previous["resource"].get("creationTime", resource["creationTime"])
        store.save(catalog, ref, {"resource": resource, "state": state})

    tracked = None if chosen.registry == "VERTEX_AI" else given  # a registered model's run is vertex.py's
    return _create_model(catalog, ref, tree, select, train, save, prepare, tracked)


def _existing(catalog: Catalog, ref: store.ModelRef) -> dict[str, Any]:
    """The model a WARM_START retrains (BigQuery: CREATE OR REPLACE MODEL ... WARM_START=TRUE)."""
    if not store.exists(catalog, ref):
        raise invalid_query(f"WARM_START=TRUE needs an existing model to retrain; model {ref} does not exist.")
    return store.load(catalog, ref)


def _create_model(
    catalog: Catalog,
    ref: store.ModelRef,
    tree: exp.Create,
    select: Select,
    train: Callable[[tuple[Field, ...], pa.Table], Any],
    save: Callable[[Any, str, float], None],
    prepare: Callable[[], None] | None = None,
    given: dict[str, Any] | None = None,
) -> str:
    """Every model type's CREATE MODEL: the name checked before the training query runs and again, under the
    store's lock, before ``save(trained, dataset location, start time)`` (another statement may have made it
    meanwhile); IF NOT EXISTS on an existing model does nothing, a clash without OR REPLACE is ``duplicate``.
    With ``given`` (the statement's options) the training is tracked in MLflow when a registry is configured."""
    if tree.args.get("replace") and tree.args.get("exists"):
        raise invalid_query("CREATE MODEL cannot have both OR REPLACE and IF NOT EXISTS.")
    if _already_done(catalog, ref, tree):
        return "CREATE_MODEL"
    if prepare is not None:
        prepare()
    source = tree.expression
    if not isinstance(source, exp.Query):
        raise invalid_query("CREATE MODEL needs AS SELECT ... (the training data).")
    started = time.time()
    report = progress.current()  # statistics.query.mlStatistics of the running job
    report.update(stage="READING")
    fields, rows = select(source)
    report.update(stage="TRAINING", rows=rows.num_rows)
    trained = train(fields, rows)
    state = trained[0] if isinstance(trained, tuple) else trained
    report.update(stage="SAVING", iterations=list(state.get("iterations", [])))
    with store.LOCK:
        if _already_done(catalog, ref, tree):
            return "CREATE_MODEL"
        report.check()  # the last moment a cancel stops the statement: nothing saved, nothing registered
        save(trained, catalog.get_dataset(ref.project, ref.dataset).get("location", "US"), started)
    report.update(stage="DONE", check=False)
    if given is not None:  # tracked as `hyp train` tracks a training (a registered model was, by vertex.py)
        tracking.track(ref, state, given, rows.num_rows, time.time() - started)
    return "CREATE_MODEL"


def _already_done(catalog: Catalog, ref: store.ModelRef, tree: exp.Create) -> bool:
    """True for IF NOT EXISTS on an existing model; ``duplicate`` for an existing one without OR REPLACE."""
    if store.exists(catalog, ref) and not tree.args.get("replace"):
        if tree.args.get("exists"):
            return True
        raise errors.duplicate(f"Model {ref}")
    return False


def _create_pca(
    catalog: Catalog, ref: store.ModelRef, tree: exp.Create, chosen: options.PcaOptions, select: Select
) -> str:
    def save(state: dict[str, Any], location: str, started: float) -> None:
        training_options: dict[str, Any] = {"scaleFeatures": chosen.scale_features, "pcaSolver": chosen.solver}
        if chosen.num_components is not None:
            training_options["numPrincipalComponents"] = str(chosen.num_components)
        else:
            training_options["pcaExplainedVarianceRatio"] = chosen.variance_ratio
        metrics = {
            "dimensionalityReductionMetrics": {
                "totalExplainedVarianceRatio": state["evaluation"]["total_explained_variance_ratio"]
            }
        }
        resource = _common(ref, location, "PCA", state, started, training_options, metrics)
        store.save(catalog, ref, {"resource": resource, "state": state})

    train = lambda fields, rows: pca.train(chosen, fields, rows)[0]  # noqa: E731
    return _create_model(catalog, ref, tree, select, train, save, given=chosen.given)


def _create_autoencoder(
    catalog: Catalog,
    ref: store.ModelRef,
    tree: exp.Create,
    params: dict[str, Any],
    select: Select,
    given: dict[str, Any],
) -> str:
    def save(trained: tuple[dict[str, Any], Any], location: str, started: float) -> None:
        state, detector = trained
        folder = store.folder(catalog, ref)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"network-{uuid.uuid4().hex}.keras"  # a new file each training: model.json names the live one
        detector.save(folder / name)
        state["autoencoder"]["keras_file"] = name
        p = state["autoencoder"]["params"]
        training_options = {
            "hiddenUnits": [str(p["hidden"]), str(p["code"]), str(p["hidden"])],
            "activationFn": "RELU",
            "batchSize": str(p["batch_size"]),
            "learnRate": p["learning_rate"],
            "maxIterations": str(p["epochs"]),
        }
        metrics = {"regressionMetrics": {
            "meanAbsoluteError": state["evaluation"]["mean_absolute_error"],
            "meanSquaredError": state["evaluation"]["mean_squared_error"],
        }}  # fmt: skip
        resource = _common(ref, location, "AUTOENCODER", state, started, training_options, metrics)
        store.save(catalog, ref, {"resource": resource, "state": state})
        for old in folder.glob("network-*.keras"):
            if old.name != name:
                old.unlink(missing_ok=True)

    train = lambda fields, rows: autoencoder.train(params, fields, rows)  # noqa: E731
    return _create_model(catalog, ref, tree, select, train, save, given=given)


def _common(
    ref: store.ModelRef,
    location: str,
    kind: str,
    state: dict[str, Any],
    started: float,
    training_options: dict[str, Any],
    metrics: dict[str, Any],
) -> dict[str, Any]:
    now = str(int(time.time() * 1000))
    return {
        "modelReference": {"projectId": ref.project, "datasetId": ref.dataset, "modelId": ref.model},
        "etag": now,
        "creationTime": now,
        "lastModifiedTime": now,
        "location": location,
        "modelType": kind,
        "featureColumns": [{"name": f["name"], "type": {"typeKind": f["type"]}} for f in state["features"]],
        "trainingRuns": [
            {
                "trainingOptions": training_options,
                "startTime": datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z"),
                "results": [
                    {
                        "index": int(it["iteration"]),
                        "durationMs": str(round(it["duration_ms"])),
                        "trainingLoss": it["loss"],
                    }
                    for it in state["iterations"]
                ],
                "evaluationMetrics": metrics,
            }
        ],
    }


def _resource(
    ref: store.ModelRef, location: str, chosen: options.KMeansOptions, state: dict[str, Any], started: float
) -> dict[str, Any]:
    """The BigQuery ``Model`` resource get_model answers (modelType, featureColumns, trainingRuns ...)."""
    k = state["kmeans"]
    training_options: dict[str, Any] = {
        "numClusters": str(k["num_clusters"]),
        "kmeansInitializationMethod": {"KMEANS++": "KMEANS_PLUS_PLUS"}.get(chosen.init_method, chosen.init_method),
        "distanceType": chosen.distance_type,
        "maxIterations": str(chosen.max_iterations),
        "standardizeFeatures": chosen.standardize_features,
        "earlyStop": chosen.min_rel_progress is not None and chosen.min_rel_progress > 0,
    }
    if chosen.init_col:
        training_options["kmeansInitializationColumn"] = chosen.init_col
    if chosen.warm_start:
        training_options["warmStart"] = True
    if chosen.min_rel_progress:
        training_options["minRelativeProgress"] = chosen.min_rel_progress
    clusters = [
        {
            "centroidId": str(c["centroid_id"]),
            "count": str(c["cluster_size"]),
            "featureValues": _feature_values(state, _raw_centroid(k, c["centroid_id"] - 1), c["cluster_size"]),
        }
        for c in state["clusters"]
    ]
    metrics = state["evaluation"]
    clustering = {
        "clusteringMetrics": {
            "daviesBouldinIndex": metrics["davies_bouldin_index"],
            "meanSquaredDistance": metrics["mean_squared_distance"],
            "clusters": clusters,
        }
    }
    return _common(ref, location, "KMEANS", state, started, training_options, clustering)


def _feature_values(state: dict[str, Any], centroid: list[float], size: int) -> list[dict[str, Any]]:
    """A cluster's featureValues: numericalValue, or for a STRING feature categoryCounts (rows of each category)."""
    out: list[dict[str, Any]] = []
    for f, columns in encoding.layout(state["features"]):
        values = centroid[columns]
        if "categories" in f:
            counts = [
                {"category": k, "count": str(round(v * size))} for k, v in zip(f["categories"], values, strict=True)
            ]
            out.append({"featureColumn": f["name"], "categoricalValue": {"categoryCounts": counts}})
        else:
            out.append({"featureColumn": f["name"], "numericalValue": values[0]})
    return out


def _raw_centroid(k: dict[str, Any], index: int) -> list[float]:
    return [c * s + m for c, s, m in zip(k["centroids_"][index], k["scale_"], k["mean_"], strict=True)]
