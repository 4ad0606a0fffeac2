"""ML.* table functions inside any query: evaluated before the query is translated.

:func:`expand` parses the statement (with the ML functions, parse.py), runs each ML function's input
(``TABLE t`` or ``(query)``) as a query, computes the function's rows in Python (kmeans.py) and puts a
placeholder table ``__hyp_ml__.r<id>`` where the call was; :func:`bound` hands those rows to the
query's DuckDB connection when it binds that table. So ML.PREDICT works in SELECT, joins, subqueries,
CTEs and CREATE TABLE AS SELECT. Pending rows are kept until bound (a few at most, then dropped).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from services.bigquery.catalog import Catalog
from services.bigquery.ml import autoencoder, kmeans, parse, pca, store
from services.bigquery.ml.statements import model_ref
from services.bigquery.sql import invalid_query

RESULTS = "__hyp_ml__"  # the placeholder tables' dataset
MAX_PENDING = 32
_ML = re.compile(r"\bML\s*\.|^\s*EXPORT\s+MODEL\b", re.IGNORECASE)
_pending: OrderedDict[str, pa.Table] = OrderedDict()
_lock = threading.Lock()

Run = Callable[[exp.Expr], pa.Table | None]  # runs a query (a syntax tree), answers its rows


def expand(
    text: str,
    parse_sql: Callable[[str], exp.Expr],
    catalog: Catalog,
    project: str,
    default_dataset: str | None,
    run: Run,
) -> exp.Expr:
    """The statement's tree, its ML.* calls replaced by placeholders bound to their computed rows."""
    if not _ML.search(text):
        return parse_sql(text)  # no ML function: the translator's own parser, untouched
    tree = parse.parse(text)
    found = parse.calls(tree)
    if found and isinstance(tree, exp.Create) and str(tree.args.get("kind") or "").upper() == "VIEW":
        raise invalid_query("ML functions inside a view are not supported by hyp bigquery yet.")
    for holder, call in found:
        rows = evaluate(catalog, project, default_dataset, call, run)
        key = f"r{uuid.uuid4().hex}"
        with _lock:
            _pending[key] = rows
            while len(_pending) > MAX_PENDING:
                _pending.popitem(last=False)
        placeholder = exp.Table(this=exp.to_identifier(key), db=exp.to_identifier(RESULTS))
        if holder.args.get("alias") is not None:
            placeholder.set("alias", holder.args["alias"])
        holder.replace(placeholder)
    return tree


def bound(dataset: str, table: str) -> pa.Table | None:
    """The rows of placeholder ``dataset.table`` (once), or None when it is not one."""
    if dataset != RESULTS:
        return None
    with _lock:
        rows = _pending.pop(table, None)
    if rows is None:
        raise invalid_query("An ML function's result was used twice or expired; run the query again.")
    return rows


def evaluate(catalog: Catalog, project: str, default_dataset: str | None, call: parse.MLFunction, run: Run) -> pa.Table:
    name = str(call.args["name"])
    ref = model_ref(call.this, project, default_dataset)
    document = store.load(catalog, ref, shared=True)  # read only: parsed once per version of the file
    state = document["state"]
    params = _params(name, call.args.get("params"))
    source = call.args.get("expression")
    rows = None
    if source is not None:
        rows = _stored(catalog, project, default_dataset, source)
        if rows is None:
            query = source.this if isinstance(source, exp.Subquery) else exp.select("*").from_(source)
            rows = run(query)
        assert rows is not None
    if name in ("PREDICT", "DETECT_ANOMALIES") and rows is None:
        raise invalid_query(f"ML.{name} needs input data: TABLE t or (query).")
    if name != "EVALUATE" and name not in ("PREDICT", "DETECT_ANOMALIES") and source is not None:
        raise invalid_query(f"ML.{name} takes no input data (only MODEL and an optional STRUCT).")
    if state.get("model_type", "KMEANS") == "PCA":
        return _pca(name, state, params, rows)
    if state.get("model_type") == "AUTOENCODER":
        return _autoencoder(name, state, store.folder(catalog, ref), params, rows)
    if name == "PREDICT":
        return kmeans.predict(state, rows)  # type: ignore[arg-type]
    if name == "DETECT_ANOMALIES":
        if "contamination" not in params:
            raise invalid_query("ML.DETECT_ANOMALIES on a KMEANS model needs STRUCT(<fraction> AS contamination).")
        return kmeans.detect_anomalies(state, rows, float(params["contamination"]))  # type: ignore[arg-type]
    if name == "CENTROIDS":
        return kmeans.centroids(state, bool(params.get("standardize", False)))
    if name == "EVALUATE":
        return kmeans.evaluation(state, rows)
    if name == "FEATURE_INFO":
        return kmeans.feature_info(state)
    if name == "TRAINING_INFO":
        return kmeans.training_info(state)
    raise invalid_query(f"ML.{name} needs a PCA model; this one is KMEANS.")


def _autoencoder(
    name: str, state: dict[str, Any], folder: Path, params: dict[str, object], rows: pa.Table | None
) -> pa.Table:
    if name == "PREDICT":
        return autoencoder.predict(state, folder, rows)  # type: ignore[arg-type]
    if name == "DETECT_ANOMALIES":
        if "contamination" not in params:
            raise invalid_query(
                "ML.DETECT_ANOMALIES on an AUTOENCODER model needs STRUCT(<fraction> AS contamination)."
            )
        return autoencoder.detect_anomalies(state, folder, rows, float(params["contamination"]))  # type: ignore[arg-type]
    if name == "EVALUATE":
        return autoencoder.evaluation(state, folder, rows)
    if name == "FEATURE_INFO":
        return kmeans.feature_info(state)
    if name == "TRAINING_INFO":
        return kmeans.training_info(state)
    raise invalid_query(f"ML.{name} does not apply to an AUTOENCODER model.")


def _pca(name: str, state: dict[str, Any], params: dict[str, object], rows: pa.Table | None) -> pa.Table:
    if name == "PREDICT":
        return pca.predict(state, rows)  # type: ignore[arg-type]
    if name == "DETECT_ANOMALIES":
        if "contamination" not in params:
            raise invalid_query("ML.DETECT_ANOMALIES on a PCA model needs STRUCT(<fraction> AS contamination).")
        return pca.detect_anomalies(state, rows, float(params["contamination"]))  # type: ignore[arg-type]
    if name == "EVALUATE":
        if rows is not None:
            raise invalid_query("ML.EVALUATE of a PCA model takes no input data.")
        return pca.evaluation(state)
    if name == "FEATURE_INFO":
        return kmeans.feature_info(state)
    if name == "TRAINING_INFO":
        return kmeans.training_info(state)
    if name == "PRINCIPAL_COMPONENTS":
        return pca.principal_components(state)
    if name == "PRINCIPAL_COMPONENT_INFO":
        return pca.principal_component_info(state)
    raise invalid_query(f"ML.{name} needs a KMEANS model; this one is PCA.")


def _stored(catalog: Catalog, project: str, default_dataset: str | None, source: exp.Expr) -> pa.Table | None:
    """``TABLE t`` of a stored table: its rows read straight from its files (no SQL pass); else None."""
    if not isinstance(source, exp.Table) or not source.name or not (source.db or default_dataset):
        return None
    ref = (source.catalog or project, source.db or str(default_dataset), source.name)
    if ref[2].upper().startswith("INFORMATION_SCHEMA") or catalog.get_table(*ref).get("type") == "VIEW":
        return None
    return catalog.read(*ref)[1]


ALLOWED = {"DETECT_ANOMALIES": {"contamination"}, "CENTROIDS": {"standardize"}}


def _params(name: str, node: exp.Expr | None) -> dict[str, object]:
    """STRUCT(value AS name, ...) -> {name: value}; names this function does not take: 400."""
    if node is None:
        return {}
    if not isinstance(node, exp.Struct):
        raise invalid_query(f"ML.{name}: expected STRUCT(... AS name), got {node.sql('bigquery')}")
    out: dict[str, object] = {}
    for item in node.expressions:
        if isinstance(item, exp.PropertyEQ):  # sqlglot reads `value AS name` in STRUCT(...) as name := value
            key, value = item.this.name, item.expression
        elif isinstance(item, exp.Alias):
            key, value = item.alias, item.this
        else:
            raise invalid_query(f"ML.{name}: STRUCT fields need names ({item.sql('bigquery')}).")
        if key.lower() not in ALLOWED.get(name, set()):
            raise invalid_query(f"ML.{name} has no argument {key} for a KMEANS model.")
        if isinstance(value, exp.Boolean):
            out[key.lower()] = bool(value.this)
        elif isinstance(value, exp.Literal) and not value.is_string:
            out[key.lower()] = float(value.this)
        else:
            raise invalid_query(f"ML.{name}: {key} must be a literal value, got {value.sql('bigquery')}.")
    return out
