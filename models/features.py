"""The one feature function, shared by training and serving.

Input rows follow the event contract's flat ``cloud_run`` shape: ``tax``, ``shipping`` and
``value`` are required (the workshop's instance shape, always enough); ``items`` (JSON text or a
list of item objects) and ``items_count`` are used when present. Features that need a column the
caller did not send come out as NaN, and the model fills them with the training median it stored,
so a workshop-shaped instance still scores (on what it has).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd

from models.errors import ModelInputError

BASE_COLUMNS: tuple[str, ...] = ("tax", "shipping", "value")
"""The workshop's (and BigQuery ML's) feature columns."""

DERIVED_COLUMNS: tuple[str, ...] = ("tax_rate", "shipping_rate", "log_value")
"""Computed from the base columns alone, so always available."""

ITEM_COLUMNS: tuple[str, ...] = ("items_count", "items_gap", "max_quantity", "max_unit_price")
"""Need ``items`` (or ``items_count``); NaN when the row does not carry them."""

ALL_COLUMNS: tuple[str, ...] = BASE_COLUMNS + DERIVED_COLUMNS + ITEM_COLUMNS

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "base": BASE_COLUMNS,
    # one column per invariant of a normal purchase: size, tax rate, shipping, basket total, quantities
    "rich": ("log_value", "tax_rate", "shipping", "items_gap", "max_quantity"),
    "all": ALL_COLUMNS,
}

RATE_CLIP = 10.0


def as_frame(rows: pd.DataFrame | Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows in any accepted shape -> a DataFrame (no copy for a DataFrame)."""
    if isinstance(rows, pd.DataFrame):
        return rows
    if isinstance(rows, Mapping):
        rows = [rows]
    rows = list(rows)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ModelInputError(f"row {i}: expected an object with tax, shipping and value, got {type(row).__name__}")
    return pd.DataFrame.from_records(rows)


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    series = frame[column]
    if series.dtype == object or not (
        pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    ):
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & series.notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ModelInputError(f"{column}: row {i} is not a number ({series.iloc[i]!r})")
        series = converted
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        what = "missing (NaN)" if math.isnan(values[i]) else f"not finite ({values[i]})"
        raise ModelInputError(f"{column}: row {i} is {what}; {int((~finite).sum())} bad row(s) in all")
    return values


def check_columns(frame: pd.DataFrame, required: Sequence[str] = BASE_COLUMNS) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ModelInputError(f"missing column(s): {', '.join(missing)} (rows need tax, shipping and value)")


def _item_stats(items: Any) -> tuple[float, float, float, float]:
    """(count, total of price*quantity, max quantity, max unit price) of one row's items; NaNs if absent."""
    if items is None or (isinstance(items, float) and math.isnan(items)):
        return _NO_ITEMS
    if isinstance(items, str | bytes):
        items = _parse_items(items)
    if not isinstance(items, list | tuple | np.ndarray):
        return _NO_ITEMS
    total = max_q = max_p = 0.0
    count = 0
    for item in items:
        if type(item) is dict:  # what JSON gives: the common case, one lookup per field
            price = item["price"] if "price" in item else item.get("item_price")
            qty = item.get("quantity", 1)
        elif isinstance(item, Mapping):
            price = item.get("price", item.get("item_price"))
            qty = item.get("quantity", 1)
        else:
            continue
        try:
            price_f = 0.0 if price is None else float(price)
            qty_f = 1.0 if qty is None else float(qty)
        except (TypeError, ValueError, OverflowError):
            continue
        if not (math.isfinite(price_f) and math.isfinite(qty_f)):
            continue
        count += 1
        total += price_f * qty_f
        if qty_f > max_q:
            max_q = qty_f
        if price_f > max_p:
            max_p = price_f
    return float(count), total, max_q, max_p


_NO_ITEMS = (math.nan,) * 4


def _item_columns(values: Iterable[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_item_stats` of every row as four float64 columns (count, total, max quantity, max price).

    The common row (JSON text of a list of objects with numeric price and quantity) is handled
    inline in one pass with no per-row call or tuple; any other row goes through ``_item_stats``,
    so every row gets exactly the same numbers.
    """
    count: list[float] = []
    total: list[float] = []
    max_q: list[float] = []
    max_p: list[float] = []
    loads, isfinite, number = orjson.loads, math.isfinite, (float, int)
    for raw in values:
        items = None
        if type(raw) is str and raw:
            try:
                items = loads(raw)
            except orjson.JSONDecodeError:
                items = None
        if type(items) is list:
            t = mq = mp = 0.0
            for item in items:
                if type(item) is not dict:
                    break
                price = item["price"] if "price" in item else item.get("item_price")
                qty = item.get("quantity", 1)
                if type(price) not in number or type(qty) not in number:
                    break  # null, strings, booleans: the general path below
                try:
                    price_f, qty_f = float(price), float(qty)  # type: ignore[arg-type]  # type() checked above
                except OverflowError:  # an integer past float64
                    break
                if not (isfinite(price_f) and isfinite(qty_f)):
                    break
                t += price_f * qty_f
                if qty_f > mq:
                    mq = qty_f
                if price_f > mp:
                    mp = price_f
            else:  # every item counted
                count.append(float(len(items)))
                total.append(t)
                max_q.append(mq)
                max_p.append(mp)
                continue
        c, t, q, p = _item_stats(raw)
        count.append(c)
        total.append(t)
        max_q.append(q)
        max_p.append(p)
    as_array = np.array
    return as_array(count), as_array(total), as_array(max_q), as_array(max_p)


def _parse_items(text: str | bytes) -> Any:
    """Items JSON -> Python; None when it is not JSON (the row's item features become NaN).

    orjson first; what it refuses goes through the standard library, which accepts a little more
    (NaN and Infinity literals, integers past 64 bits, lone surrogates), so results never change.
    """
    if not text:
        return []
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return None


def _compute(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, np.ndarray]:
    unknown = [c for c in columns if c not in ALL_COLUMNS]
    if unknown:
        raise ModelInputError(f"unknown feature(s): {', '.join(unknown)}")
    check_columns(frame)
    tax, shipping, value = (_numeric(frame, c) for c in BASE_COLUMNS)
    out: dict[str, np.ndarray] = {"tax": tax, "shipping": shipping, "value": value}
    wanted = set(columns)
    # only what the feature set needs: a base-feature model never touches items
    if "tax_rate" in wanted:
        positive = value > 0
        safe = np.where(positive, value, 1.0)
        out["tax_rate"] = np.clip(np.where(positive, tax / safe, np.sign(tax) * RATE_CLIP), -RATE_CLIP, RATE_CLIP)
    if "shipping_rate" in wanted:
        out["shipping_rate"] = np.clip(shipping / np.maximum(np.abs(value), 1.0), -RATE_CLIP, RATE_CLIP)
    if "log_value" in wanted:
        out["log_value"] = np.sign(value) * np.log1p(np.abs(value))
    if wanted & set(ITEM_COLUMNS):
        n = len(frame)
        if "items" in frame.columns:
            count, total, max_q, max_p = _item_columns(frame["items"].to_numpy())
        else:
            count = total = max_q = max_p = np.full(n, np.nan)
        if "items_count" in frame.columns:
            given = pd.to_numeric(frame["items_count"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            count = np.where(np.isnan(count), given, count)
        out["items_count"] = count
        out["items_gap"] = np.clip((value - total) / np.maximum(np.abs(total), 1.0), -RATE_CLIP, RATE_CLIP)
        out["max_quantity"] = np.log1p(np.maximum(max_q, 0.0))
        out["max_unit_price"] = np.log1p(np.maximum(max_p, 0.0))
    return out


def features(
    rows: pd.DataFrame | Mapping[str, Any] | Iterable[Mapping[str, Any]],
    columns: Sequence[str] = BASE_COLUMNS,
) -> pd.DataFrame:
    """Compute the named feature columns (float64) for every row, vectorised where it can be.

    Raises ModelInputError naming the column and row for a missing base column or a
    non-numeric, NaN or infinite base value. Item features are NaN when a row has no items.
    """
    frame = as_frame(rows)
    out = _compute(frame, columns)
    return pd.DataFrame({c: out[c] for c in columns}, index=frame.index)


def feature_matrix(
    rows: pd.DataFrame | Mapping[str, Any] | Iterable[Mapping[str, Any]],
    columns: Sequence[str] = BASE_COLUMNS,
) -> np.ndarray:
    """The same features as :func:`features`, as a float64 matrix (the scoring path: no DataFrame)."""
    out = _compute(as_frame(rows), columns)
    return np.column_stack([out[c] for c in columns])


def fill_missing(matrix: np.ndarray, fill_values: np.ndarray) -> np.ndarray:
    """Replace NaNs (features a row could not provide) with the training medians, column by column."""
    mask = np.isnan(matrix)
    if mask.any():
        matrix = np.where(mask, fill_values[np.newaxis, :], matrix)
    return matrix
