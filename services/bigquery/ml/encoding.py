"""Feature columns of a BigQuery ML model as the trainers see them, after BigQuery ML's automatic preprocessing:
numeric columns (INT64, FLOAT64, NUMERIC, BIGNUMERIC) as float64 with NULL as NaN (imputed with the training
mean by the caller), and STRING columns one-hot encoded, as BigQuery ML documents for every model type but
boosted trees and random forests (KMEANS, PCA and AUTOENCODER here).

A STRING feature's vocabulary is its training values, sorted; NULL is one more category when the training
rows held NULLs; a value never seen in training (or NULL without a NULL category) encodes as all zeros
(weight 0). A model's ``features`` (in its state) are ``{"name", "type"}`` plus ``"categories"`` for STRING.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from services.bigquery.schema import Field
from services.bigquery.sql import invalid_query

NUMERIC = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "NUMERIC": "NUMERIC", "BIGNUMERIC": "BIGNUMERIC"}
CATEGORICAL = {"STRING": "STRING"}


def feature_fields(fields: tuple[Field, ...], skip: str | None, kind: str) -> list[Field]:
    """The query's columns that are features (all but ``skip``); a type this engine cannot encode: 400 naming it."""
    out = []
    for f in fields:
        if skip is not None and f.name.lower() == skip.lower():
            continue
        if f.mode == "REPEATED" or (f.type not in NUMERIC and f.type not in CATEGORICAL):
            shown = f"ARRAY<{f.type}>" if f.mode == "REPEATED" else f.type
            raise invalid_query(
                f"Feature column {f.name} has type {shown}: hyp bigquery's {kind} takes numeric columns "
                "(INT64, FLOAT64, NUMERIC) and STRING columns (one-hot encoded) only. "
                "CAST the column or leave it out of the query."
            )
        out.append(f)
    if not out:
        raise invalid_query("The training query of CREATE MODEL has no feature column.")
    return out


def width(feature: dict[str, Any]) -> int:
    return len(feature["categories"]) if "categories" in feature else 1


def layout(features: list[dict[str, Any]]) -> list[tuple[dict[str, Any], slice]]:
    """Each feature with the columns of the encoded matrix it occupies."""
    out, start = [], 0
    for f in features:
        out.append((f, slice(start, start + width(f))))
        start += width(f)
    return out


def _column(rows: pa.Table, name: str, function: str) -> pa.ChunkedArray:
    present = {n.lower(): n for n in rows.column_names}
    if name.lower() not in present:
        raise invalid_query(
            f"Invalid table-valued function ML.{function}: Column {name} is not found in the input data "
            f"to the {function} function."
        )
    return rows.column(present[name.lower()])


def training(fields: tuple[Field, ...], rows: pa.Table, skip: str | None, kind: str) -> list[dict[str, Any]]:
    """The model's features from the training query: types, and each STRING column's vocabulary."""
    out: list[dict[str, Any]] = []
    for f in feature_fields(fields, skip, kind):
        if f.type in CATEGORICAL:
            column = _column(rows, f.name, "CREATE_MODEL").cast(pa.string())
            values = sorted(str(v) for v in pc.unique(column.drop_null()).to_pylist())
            categories: list[str | None] = [*values, *([None] if column.null_count else [])]
            out.append({"name": f.name, "type": "STRING", "categories": categories})
        else:
            out.append({"name": f.name, "type": NUMERIC[f.type]})
    return out


def encode(
    features: list[dict[str, Any]], rows: pa.Table, function: str = "PREDICT", order: Literal["C", "F"] = "C"
) -> np.ndarray:
    """The encoded feature matrix of ``rows`` (float64; NaN for a NULL numeric value), filled column by column
    into one array (no per-feature blocks to stack: a million rows cost a copy less). Row-major by default, as
    `hyp train` hands its matrix to the trainer (so training rounds exactly as it does); ``order="F"`` for
    scoring: column-major, as a pandas frame's ``to_numpy()``, each column written in one run, and a model's
    distances (row sums over a few features) ~1.3x faster than over a row-major matrix, with the same results."""
    out = np.empty((rows.num_rows, sum(width(f) for f in features)), order=order)
    for f, columns in layout(features):
        column = _column(rows, f["name"], function)
        if "categories" in f:
            out[:, columns] = _one_hot(column, f["categories"])
            continue
        try:
            out[:, columns.start] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise invalid_query(f"Column {f['name']} of the input data to ML.{function} is not numeric.") from None
    return out


def _one_hot(column: pa.ChunkedArray, categories: list[str | None]) -> np.ndarray:
    known = [c for c in categories if c is not None]
    values = column.cast(pa.string())
    index = pc.index_in(values, value_set=pa.array(known, pa.string())).to_numpy(zero_copy_only=False)
    out = np.zeros((len(values), len(categories)))
    found = ~np.isnan(index.astype(np.float64))
    rows = np.flatnonzero(found)
    out[rows, index[found].astype(np.int64)] = 1.0
    if None in categories:
        nulls = values.is_null().to_numpy(zero_copy_only=False)
        out[nulls, categories.index(None)] = 1.0
    return out


def feature_info(features: list[dict[str, Any]], X: np.ndarray) -> list[dict[str, Any]]:
    """ML.FEATURE_INFO's rows: numeric statistics for numeric features; category_count (distinct non-NULL
    values) for STRING ones, with their NULL count."""
    out = []
    with np.errstate(all="ignore"):
        for f, columns in layout(features):
            block = X[:, columns]
            row: dict[str, Any] = {"input": f["name"], "dimension": None}
            if "categories" in f:
                nulls = int(block[:, f["categories"].index(None)].sum()) if None in f["categories"] else 0
                stats = dict.fromkeys(("min", "max", "mean", "median", "stddev"))
                row |= stats | {"category_count": sum(c is not None for c in f["categories"]), "null_count": nulls}
            else:
                column = block[:, 0]
                values = column[~np.isnan(column)]
                some = values.size > 0
                row |= {
                    "min": float(values.min()) if some else None,
                    "max": float(values.max()) if some else None,
                    "mean": float(values.mean()) if some else None,
                    "median": float(np.median(values)) if some else None,
                    "stddev": float(values.std(ddof=1)) if values.size > 1 else None,
                    "category_count": None,
                    "null_count": int(column.size - values.size),
                }
            out.append(row)
    return out
