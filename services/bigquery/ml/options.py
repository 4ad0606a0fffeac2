"""CREATE MODEL's OPTIONS(...): read, checked against what this engine trains, typed.

Every option is either used or refused with a 400 naming it (never ignored). Defaults follow
``hyp train --model kmeans`` where BigQuery ML's differ (KMEANS_INIT_METHOD, early stopping), so the
SQL path and the Python path train the same clusters; docs/bigquery.md lists the differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from services.bigquery.sql import invalid_query

SUPPORTED_TYPES = ("KMEANS", "PCA", "AUTOENCODER")
# model types BigQuery ML has that this engine does not train (yet): a 400 saying so, not "unknown"
OTHER_TYPES = (
    "LINEAR_REG", "LOGISTIC_REG", "BOOSTED_TREE_CLASSIFIER", "BOOSTED_TREE_REGRESSOR",
    "RANDOM_FOREST_CLASSIFIER", "RANDOM_FOREST_REGRESSOR", "DNN_CLASSIFIER", "DNN_REGRESSOR",
    "DNN_LINEAR_COMBINED_CLASSIFIER", "DNN_LINEAR_COMBINED_REGRESSOR", "MATRIX_FACTORIZATION", "ARIMA_PLUS",
    "ARIMA_PLUS_XREG", "TENSORFLOW", "TENSORFLOW_LITE", "ONNX", "XGBOOST", "AUTOML_CLASSIFIER",
    "AUTOML_REGRESSOR", "TRANSFORM_ONLY", "CONTRIBUTION_ANALYSIS",
)  # fmt: skip
KMEANS_OPTIONS = {
    "MODEL_TYPE", "NUM_CLUSTERS", "KMEANS_INIT_METHOD", "KMEANS_INIT_COL", "DISTANCE_TYPE",
    "STANDARDIZE_FEATURES", "MAX_ITERATIONS", "EARLY_STOP", "MIN_REL_PROGRESS",
    "MODEL_REGISTRY", "VERTEX_AI_MODEL_ID", "VERTEX_AI_MODEL_VERSION_ALIASES", "WARM_START",
}  # fmt: skip
PCA_OPTIONS = {"MODEL_TYPE", "NUM_PRINCIPAL_COMPONENTS", "PCA_EXPLAINED_VARIANCE_RATIO", "SCALE_FEATURES", "PCA_SOLVER"}
NOT_YET = {
    "WARM_START": "retraining a PCA or AUTOENCODER model from its stored state",
    "MODEL_REGISTRY": "registering a PCA or AUTOENCODER model from SQL",
}


@dataclass
class KMeansOptions:
    num_clusters: int | None = None  # None: BigQuery ML's default, from the number of rows
    init_method: str = "KMEANS++"
    init_col: str | None = None
    distance_type: str = "EUCLIDEAN"
    standardize_features: bool = True
    max_iterations: int = 20
    min_rel_progress: float | None = None  # None: the Python trainer's own stopping rule
    registry: str | None = None
    vertex_model_id: str | None = None
    vertex_aliases: list[str] = field(default_factory=list)
    warm_start: bool = False  # retrain from the existing model's centroids (warm_kmeans)
    given: dict[str, Any] = field(default_factory=dict)  # as written, for trainingOptions

    def clusters_for(self, rows: int) -> int:
        return self.num_clusters if self.num_clusters is not None else max(2, int(math.log10(max(rows, 1))))


def _value(name: str, node: exp.Expr | None) -> Any:
    if isinstance(node, exp.Literal):
        return (
            node.this
            if node.is_string
            else (float(node.this) if "." in node.this or "e" in node.this.lower() else int(node.this))
        )
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return -_value(name, node.this)
    if isinstance(node, exp.Array):
        return [_value(name, e) for e in node.expressions]
    raise invalid_query(f"Invalid value for option {name}: {node.sql('bigquery') if node else 'nothing'}")


def read(properties: exp.Properties | None) -> dict[str, Any]:
    """OPTIONS(...) as {UPPER_NAME: value}; a repeated option is refused."""
    out: dict[str, Any] = {}
    for prop in properties.expressions if properties is not None else []:
        if not isinstance(prop, exp.Property):
            raise invalid_query(f"Unsupported CREATE MODEL clause: {prop.sql('bigquery')}")
        name = prop.name.upper()
        if name in out:
            raise invalid_query(f"Option {name} is given more than once.")
        out[name] = _value(name, prop.args.get("value"))
    return out


def _string(options: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    if name not in options:
        return None
    value = options[name]
    if not isinstance(value, str) or value.upper() not in allowed:
        raise invalid_query(f"Invalid value for option {name}: {value!r}; expected one of {', '.join(allowed)}.")
    return value.upper()


def _typed(options: dict[str, Any], name: str, kind: type, low: float | None = None) -> Any:
    value = options[name]
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok or (low is not None and value < low):
        raise invalid_query(f"Invalid value for option {name}: {value!r}.")
    return value


def model_type(options: dict[str, Any]) -> str:
    if "MODEL_TYPE" not in options:
        raise invalid_query("Option MODEL_TYPE is required in CREATE MODEL, e.g. OPTIONS(MODEL_TYPE='KMEANS').")
    kind = str(options["MODEL_TYPE"]).upper()
    if kind in OTHER_TYPES:
        raise invalid_query(
            f"MODEL_TYPE '{kind}' is not supported by hyp bigquery yet (supported: KMEANS, PCA, AUTOENCODER)."
        )
    if kind not in SUPPORTED_TYPES:
        raise invalid_query(f"Invalid value for option MODEL_TYPE: '{options['MODEL_TYPE']}'.")
    return kind


AUTOENCODER_OPTIONS = {
    "MODEL_TYPE",
    "HIDDEN_UNITS",
    "ACTIVATION_FN",
    "DROPOUT",
    "BATCH_SIZE",
    "LEARN_RATE",
    "MAX_ITERATIONS",
}


def autoencoder(options: dict[str, Any]) -> dict[str, Any]:
    """The models package's Keras autoencoder parameters (dense [h, c, h], ReLU, Adam, no dropout)."""
    for name in options:
        if name in NOT_YET:
            raise invalid_query(f"Option {name} ({NOT_YET[name]}) is not supported by hyp bigquery yet.")
        if name not in AUTOENCODER_OPTIONS:
            raise invalid_query(f"Unknown option {name} for MODEL_TYPE AUTOENCODER.")
    params: dict[str, Any] = {}
    if "HIDDEN_UNITS" in options:
        units = options["HIDDEN_UNITS"]
        ok = isinstance(units, list) and len(units) == 3 and all(isinstance(u, int) and u >= 1 for u in units)
        if not ok or units[0] != units[2]:
            raise invalid_query(
                f"Invalid value for option HIDDEN_UNITS: {units!r}; hyp bigquery's autoencoder is [h, c, h] "
                "(a hidden layer, the code, a hidden layer)."
            )
        params["hidden"], params["code"] = units[0], units[1]
    if "ACTIVATION_FN" in options and str(options["ACTIVATION_FN"]).upper() != "RELU":
        raise invalid_query(
            f"Option ACTIVATION_FN={options['ACTIVATION_FN']!r}: only 'RELU' is supported by hyp bigquery."
        )
    if "DROPOUT" in options and _typed(options, "DROPOUT", float, 0.0) != 0.0:
        raise invalid_query("Option DROPOUT: only 0 (no dropout) is supported by hyp bigquery.")
    if "BATCH_SIZE" in options:
        params["batch_size"] = _typed(options, "BATCH_SIZE", int, 1)
    if "LEARN_RATE" in options:
        params["learning_rate"] = _typed(options, "LEARN_RATE", float, 0.0)
    if "MAX_ITERATIONS" in options:
        params["epochs"] = _typed(options, "MAX_ITERATIONS", int, 1)
    return params


@dataclass
class PcaOptions:
    num_components: int | None = None
    variance_ratio: float | None = None
    scale_features: bool = True
    solver: str = "AUTO"
    given: dict[str, Any] = field(default_factory=dict)


def pca(options: dict[str, Any]) -> PcaOptions:
    for name in options:
        if name in NOT_YET:
            raise invalid_query(f"Option {name} ({NOT_YET[name]}) is not supported by hyp bigquery yet.")
        if name not in PCA_OPTIONS:
            raise invalid_query(f"Unknown option {name} for MODEL_TYPE PCA.")
    out = PcaOptions(given=dict(options))
    if ("NUM_PRINCIPAL_COMPONENTS" in options) == ("PCA_EXPLAINED_VARIANCE_RATIO" in options):
        raise invalid_query(
            "MODEL_TYPE PCA needs exactly one of NUM_PRINCIPAL_COMPONENTS and PCA_EXPLAINED_VARIANCE_RATIO."
        )
    if "NUM_PRINCIPAL_COMPONENTS" in options:
        out.num_components = _typed(options, "NUM_PRINCIPAL_COMPONENTS", int, 1)
    if "PCA_EXPLAINED_VARIANCE_RATIO" in options:
        out.variance_ratio = _typed(options, "PCA_EXPLAINED_VARIANCE_RATIO", float, 0.0)
        if not 0.0 < out.variance_ratio < 1.0:
            raise invalid_query(f"Invalid value for option PCA_EXPLAINED_VARIANCE_RATIO: {out.variance_ratio}.")
    if "SCALE_FEATURES" in options:
        out.scale_features = _typed(options, "SCALE_FEATURES", bool)
    out.solver = _string(options, "PCA_SOLVER", ("FULL", "RANDOMIZED", "AUTO")) or "AUTO"
    return out


def kmeans(options: dict[str, Any]) -> KMeansOptions:
    for name in options:
        if name in NOT_YET and name not in ("MODEL_REGISTRY", "WARM_START"):
            raise invalid_query(f"Option {name} ({NOT_YET[name]}) is not supported by hyp bigquery yet.")
        if name not in KMEANS_OPTIONS:
            raise invalid_query(f"Unknown option {name} for MODEL_TYPE KMEANS.")
    out = KMeansOptions(given=dict(options))
    if "NUM_CLUSTERS" in options:
        out.num_clusters = _typed(options, "NUM_CLUSTERS", int, 2)
    out.init_method = _string(options, "KMEANS_INIT_METHOD", ("RANDOM", "KMEANS++", "CUSTOM")) or "KMEANS++"
    if "KMEANS_INIT_COL" in options:
        out.init_col = _typed(options, "KMEANS_INIT_COL", str)
    if (out.init_method == "CUSTOM") != (out.init_col is not None):
        raise invalid_query("KMEANS_INIT_COL goes with KMEANS_INIT_METHOD='CUSTOM', and it needs one.")
    out.distance_type = _string(options, "DISTANCE_TYPE", ("EUCLIDEAN", "COSINE")) or "EUCLIDEAN"
    if "STANDARDIZE_FEATURES" in options:
        out.standardize_features = _typed(options, "STANDARDIZE_FEATURES", bool)
    if "MAX_ITERATIONS" in options:
        out.max_iterations = _typed(options, "MAX_ITERATIONS", int, 1)
    early = _typed(options, "EARLY_STOP", bool) if "EARLY_STOP" in options else None
    if "MIN_REL_PROGRESS" in options:
        out.min_rel_progress = _typed(options, "MIN_REL_PROGRESS", float, 0.0)
    if early is True and out.min_rel_progress is None:
        out.min_rel_progress = 0.01  # BigQuery ML's default MIN_REL_PROGRESS
    if early is False:
        out.min_rel_progress = 0.0  # every iteration up to MAX_ITERATIONS (or until nothing moves)
    if "WARM_START" in options:
        out.warm_start = _typed(options, "WARM_START", bool)
    out.registry = _string(options, "MODEL_REGISTRY", ("VERTEX_AI",))
    if "VERTEX_AI_MODEL_ID" in options:
        out.vertex_model_id = _typed(options, "VERTEX_AI_MODEL_ID", str)
    if "VERTEX_AI_MODEL_VERSION_ALIASES" in options:
        aliases = options["VERTEX_AI_MODEL_VERSION_ALIASES"]
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise invalid_query("Invalid value for option VERTEX_AI_MODEL_VERSION_ALIASES: expected ['alias', ...].")
        out.vertex_aliases = aliases
    if out.registry is None and (out.vertex_model_id or out.vertex_aliases):
        raise invalid_query("VERTEX_AI_MODEL_ID and VERTEX_AI_MODEL_VERSION_ALIASES need MODEL_REGISTRY='VERTEX_AI'.")
    return out


# options a warm start keeps from the existing model: they define the space its centroids live in
WARM_FIXED = {"NUM_CLUSTERS": "num_clusters", "STANDARDIZE_FEATURES": "standardize_features",
              "DISTANCE_TYPE": "distance_type"}  # fmt: skip


def warm_kmeans(given: dict[str, Any], previous: dict[str, Any]) -> KMeansOptions:
    """``WARM_START=TRUE``: the options of the existing model (``previous``, its stored state) unless the
    statement overrides them, as BigQuery ML documents; NUM_CLUSTERS, STANDARDIZE_FEATURES and DISTANCE_TYPE
    cannot change, and the start is the existing centroids (no KMEANS_INIT_METHOD / KMEANS_INIT_COL)."""
    kind = str(previous.get("model_type", "KMEANS"))
    if kind != "KMEANS":
        raise invalid_query(f"WARM_START: the existing model is a {kind} model; MODEL_TYPE cannot change.")
    for name in ("KMEANS_INIT_METHOD", "KMEANS_INIT_COL"):
        if name in given:
            raise invalid_query(f"Option {name} cannot be used with WARM_START=TRUE: training starts from the "
                                "existing model's centroids.")  # fmt: skip
    k = previous["kmeans"]
    stored = {n: v for n, v in (previous.get("options") or {}).items() if n not in ("KMEANS_INIT_METHOD",
              "KMEANS_INIT_COL", "WARM_START", "MODEL_REGISTRY", "VERTEX_AI_MODEL_ID",
              "VERTEX_AI_MODEL_VERSION_ALIASES")}  # fmt: skip
    out = kmeans(stored | given)
    for name, key in WARM_FIXED.items():
        before, now = k[key], getattr(out, key)
        if name in given and now != before:
            raise invalid_query(
                f"Option {name} cannot change in a warm start: the model was trained with {name}={before!r}, "
                f"the statement gives {now!r}."
            )
        setattr(out, key, before)
    out.given = dict(stored | given)
    return out
