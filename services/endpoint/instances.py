"""Request bodies -> feature columns, strictly, with a 4xx naming the field that is wrong.

Accepted shapes (all JSON):

* Vertex AI: ``{"instances": [{"tax": 1.2, "shipping": 4.0, "value": 20.5}, ...], "parameters": {...}}``
  or positional rows ``{"instances": [[1.2, 4.0, 20.5], ...]}`` in feature order;
* MLflow ``/invocations``: ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``,
  ``{"dataframe_records": [{...}]}``, ``{"instances": [...]}`` and ``{"inputs": ...}`` (records,
  rows, or one list per column).

The hot path is vectorised: one pass per column builds a float64 array; only when that fails
does a slow pass look for the first bad cell to name it. Columns beyond the required features
are passed to the model as they are when every row has them (a model may use more than
tax/shipping/value, e.g. ``items``); the model's feature function judges them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

FEATURES: tuple[str, ...] = ("tax", "shipping", "value")
_NUMBER_TYPES = {float, int}


class InputError(ValueError):
    """Bad input; ``status`` is the HTTP status to answer with, the message names the field."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Batch:
    """Validated feature columns (float64 for the features, lists for any extra column)."""

    columns: dict[str, Any]
    rows: int
    parameters: dict[str, Any]


def loads(body: bytes) -> Any:
    """Decode a JSON body; NaN/Infinity literals and bad UTF-8 are input errors.

    orjson first (several times the standard library's speed). What it refuses goes through the
    standard library, which either names the problem (a ``NaN``/``Infinity`` literal, the position
    of a syntax error) or accepts what orjson is stricter about (an integer or exponent past
    float64, a lone surrogate), so the error messages and the accepted inputs stay as they were.
    """
    if not body:
        raise InputError("body: empty; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except InputError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"body: not valid JSON ({exc})") from None


def _reject_constant(name: str) -> float:
    raise InputError(f"body: {name} is not a number JSON allows; every feature must be finite")


def _type_name(value: Any) -> str:
    return (
        "null"
        if value is None
        else {"str": "string", "bool": "boolean", "dict": "object"}.get(type(value).__name__, type(value).__name__)
    )


def _at(prefix: str, suffix: str) -> Callable[[int], str]:
    """The path of cell ``i``: ``prefix[i]suffix``."""
    return lambda i: f"{prefix}[{i}]{suffix}"


def _column(values: list[Any], cell: Callable[[int], str]) -> np.ndarray:
    """A float64 column, or InputError naming the first bad cell (``cell(i)`` is its path)."""
    types = set(map(type, values))
    if types <= _NUMBER_TYPES:
        try:
            array = np.asarray(values, dtype=np.float64)
        except OverflowError:
            array = None  # an int too large for float64: found below
        if array is not None and bool(np.isfinite(array).all()):
            return array
    for i, value in enumerate(values):
        if type(value) not in _NUMBER_TYPES:
            raise InputError(f"{cell(i)}: expected a number, got {_type_name(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise InputError(f"{cell(i)}: {value} is out of range") from None
        if not math.isfinite(number):
            raise InputError(f"{cell(i)}: must be finite, got {number}")
    raise InputError(f"{cell(0)}: not a number")  # unreachable: the loop above names the cell


def _check_size(rows: int, field: str, max_rows: int) -> None:
    if rows == 0:
        raise InputError(f"{field}: empty; send at least one instance")
    if rows > max_rows:
        raise InputError(f"{field}: {rows} instances is over the limit of {max_rows} per request", status=400)


def from_records(
    records: list[Any], field: str, max_rows: int, features: Sequence[str] = FEATURES, parameters: dict | None = None
) -> Batch:
    """Rows as objects (``{"tax": ..}``) or as positional lists in feature order."""
    if not isinstance(records, list):
        raise InputError(f"{field}: expected a list of instances, got {_type_name(records)}")
    _check_size(len(records), field, max_rows)
    first = records[0]
    where = field + "[{}]"
    if isinstance(first, dict):
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise InputError(f"{where.format(i)}: expected an object like {{{', '.join(features)}}}")
        columns: dict[str, Any] = {}
        for name in features:
            try:
                values = [r[name] for r in records]
            except KeyError:
                i = next(i for i, r in enumerate(records) if name not in r)
                raise InputError(f"{where.format(i)}.{name}: missing (required: {', '.join(features)})") from None
            columns[name] = _column(values, _at(field, f".{name}"))
        for name in first:  # more columns (items, items_count, ...) when every row has them
            if name not in columns and all(name in r for r in records):
                columns[name] = [r[name] for r in records]
        return Batch(columns, len(records), parameters or {})
    if isinstance(first, list):
        width = len(features)
        for i, record in enumerate(records):
            if not isinstance(record, list):
                raise InputError(f"{where.format(i)}: expected a list of {width} numbers ({', '.join(features)})")
            if len(record) != width:
                raise InputError(
                    f"{where.format(i)}: expected {width} values ({', '.join(features)}), got {len(record)}"
                )
        columns = {
            name: _column([r[j] for r in records], _at(field, f"[{j}] ({name})")) for j, name in enumerate(features)
        }
        return Batch(columns, len(records), parameters or {})
    raise InputError(
        f"{where.format(0)}: expected an object like {{{', '.join(features)}}} or a list of numbers, "
        f"got {_type_name(first)}"
    )


def from_split(split: Any, max_rows: int, features: Sequence[str] = FEATURES) -> Batch:
    """MLflow's ``dataframe_split``: ``{"columns": [...], "data": [[...], ...]}``."""
    field = "dataframe_split"
    if not isinstance(split, dict):
        raise InputError(f"{field}: expected an object with columns and data, got {_type_name(split)}")
    names, data = split.get("columns"), split.get("data")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError(f"{field}.columns: expected a list of column names")
    if len(set(names)) != len(names):
        raise InputError(f"{field}.columns: duplicate column names")
    if not isinstance(data, list):
        raise InputError(f"{field}.data: expected a list of rows")
    for name in features:
        if name not in names:
            raise InputError(f"{field}.columns: {name} missing (required: {', '.join(features)})")
    records = []
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(names):
            raise InputError(f"{field}.data[{i}]: expected a list of {len(names)} values, one per column")
        records.append(dict(zip(names, row, strict=True)))
    return from_records(records, f"{field}.data", max_rows, features)


def from_columns(columns: dict[str, Any], field: str, max_rows: int, features: Sequence[str] = FEATURES) -> Batch:
    """One list per column: ``{"tax": [..], "shipping": [..], "value": [..]}``."""
    lengths = set()
    out: dict[str, Any] = {}
    for name in features:
        if name not in columns:
            raise InputError(f"{field}.{name}: missing (required: {', '.join(features)})")
        values = columns[name]
        if not isinstance(values, list):
            raise InputError(f"{field}.{name}: expected a list of numbers, got {_type_name(values)}")
        lengths.add(len(values))
        out[name] = values
    if len(lengths) > 1:
        raise InputError(f"{field}: columns have different lengths ({', '.join(map(str, sorted(lengths)))})")
    rows = lengths.pop()
    _check_size(rows, field, max_rows)
    arrays: dict[str, Any] = {name: _column(values, _at(f"{field}.{name}", "")) for name, values in out.items()}
    for name, values in columns.items():
        if name not in arrays and isinstance(values, list) and len(values) == rows:
            arrays[name] = values
    return Batch(arrays, rows, {})


def parse_vertex(payload: Any, max_rows: int, features: Sequence[str] = FEATURES) -> Batch:
    """Vertex AI's ``{"instances": [...], "parameters": {...}}``."""
    if not isinstance(payload, dict):
        raise InputError(f"body: expected a JSON object with instances, got {_type_name(payload)}")
    if "instances" not in payload:
        raise InputError('instances: missing; send {"instances": [{"tax": .., "shipping": .., "value": ..}]}')
    parameters = payload.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InputError(f"parameters: expected an object, got {_type_name(parameters)}")
    return from_records(payload["instances"], "instances", max_rows, features, parameters)


MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def parse_any(payload: Any, max_rows: int, features: Sequence[str] = FEATURES) -> Batch:
    """Any of MLflow's ``/invocations`` JSON shapes (which include Vertex's ``instances``)."""
    if isinstance(payload, list):
        return from_records(payload, "body", max_rows, features)
    if not isinstance(payload, dict):
        raise InputError(f"body: expected a JSON object, got {_type_name(payload)}")
    keys = [k for k in MLFLOW_KEYS if k in payload]
    if len(keys) != 1:
        found = f"got {', '.join(keys)}" if keys else "got none"
        raise InputError(f"body: expected exactly one of {', '.join(MLFLOW_KEYS)}; {found}")
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        return from_split(value, max_rows, features)
    if key == "instances":
        return parse_vertex(payload, max_rows, features)
    if key == "inputs" and isinstance(value, dict):
        return from_columns(value, key, max_rows, features)
    return from_records(value, key, max_rows, features)
