"""Arrow rows -> BigQuery's REST row format (tabledata.list, jobs.getQueryResults): ``{"f": [{"v": ...}]}``.

Every scalar is a string (TIMESTAMP: microseconds since the epoch with ``useInt64Timestamp``, else
seconds as a float string), a RECORD is ``{"f": [...]}``, a REPEATED field a list of ``{"v": ...}``.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa

from services.bigquery.schema import Field

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICRO = timedelta(microseconds=1)


def encode_rows(data: pa.Table, fields: tuple[Field, ...], int64_timestamp: bool = True) -> list[dict[str, Any]]:
    """The rows as Python objects (``{"f": [{"v": ...}]}``); :func:`rows_json` writes the same as JSON text."""
    return orjson.loads(rows_json(data, fields, int64_timestamp))  # type: ignore[no-any-return]


def rows_json(data: pa.Table, fields: tuple[Field, ...], int64_timestamp: bool = True) -> bytes:
    """The JSON array of the rows, built column by column: each cell's ``{"v": ...}`` text made by Arrow for
    flat scalars (the usual case), by orjson value by value for the rest, then joined row by row by Arrow."""
    import pyarrow.compute as pc

    if data.num_rows == 0:
        return b"[]"
    if not fields:
        return b"[" + b",".join([b'{"f":[]}'] * data.num_rows) + b"]"
    cells = [_cells(data, f, int64_timestamp) for f in fields]
    joined = pc.binary_join_element_wise(*cells, ",") if len(cells) > 1 else cells[0]
    rows = pc.binary_join_element_wise('{"f":[', joined, "]}", "")
    return b"[" + ",".join(rows.to_pylist()).encode() + b"]"


_NULL_CELL = '{"v":null}'
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'  # what JSON escapes in a string: quote, backslash, control characters


def _cells(data: pa.Table, field: Field, int64_timestamp: bool) -> pa.Array:
    """One column's cells as JSON text (``{"v":"12"}``, ``{"v":null}``), one string per row."""
    import pyarrow.compute as pc

    if field.name not in data.column_names:
        return pa.array([_NULL_CELL] * data.num_rows, pa.string())
    column = data.column(field.name).combine_chunks()
    if field.mode != "REPEATED":
        text = _arrow_text(column, field.type, int64_timestamp)
        if text is not None and not pc.any(pc.match_substring_regex(text, _NEEDS_ESCAPE)).as_py():
            quoted = pc.binary_join_element_wise('{"v":"', text, '"}', "")
            return pc.fill_null(quoted, _NULL_CELL)
    values = [_value(v, field, int64_timestamp) for v in column.to_pylist()]
    return pa.array([orjson.dumps({"v": v}).decode() for v in values], pa.string())


def _arrow_text(column: pa.Array, kind: str, int64_timestamp: bool) -> pa.Array | None:
    """The column as BigQuery's strings, cast by Arrow; None where the value-by-value path is needed."""
    import pyarrow.compute as pc

    arrow = column.type
    if kind in ("STRING", "JSON") and pa.types.is_string(arrow):
        return column
    if kind == "INTEGER" and pa.types.is_integer(arrow):
        return pc.cast(column, pa.string())
    if kind == "BOOLEAN" and pa.types.is_boolean(arrow):
        return pc.cast(column, pa.string())  # "true" / "false", as BigQuery writes them
    if kind == "FLOAT" and pa.types.is_floating(arrow):
        if pc.all(pc.or_kleene(pc.is_finite(column), pc.is_null(column))).as_py() is False:
            return None  # NaN and infinities: written as Python writes them
        return pc.cast(pc.cast(column, pa.float64()), pa.string())  # the shortest text that reads back exactly
    if kind == "TIMESTAMP" and int64_timestamp and pa.types.is_timestamp(arrow):
        micros = pc.cast(pc.cast(column, pa.timestamp("us", tz=arrow.tz), safe=False), pa.int64())
        return pc.cast(micros, pa.string())
    return None


def _value(value: Any, field: Field, int64_timestamp: bool) -> Any:
    if field.mode == "REPEATED":
        return [{"v": _scalar(v, field, int64_timestamp)} for v in (value or [])]
    return _scalar(value, field, int64_timestamp)


def _scalar(value: Any, field: Field, int64_timestamp: bool) -> Any:
    if value is None:
        return None
    kind = field.type
    if kind == "RECORD":
        return {"f": [{"v": _value(value.get(f.name), f, int64_timestamp)} for f in field.fields]}
    if kind == "BOOLEAN":
        return "true" if value else "false"
    if kind == "TIMESTAMP":
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        micros = (moment - _EPOCH) // _ONE_MICRO
        return str(micros) if int64_timestamp else repr(micros / 1e6)
    if kind == "DATETIME":
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    if kind == "TIME":
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    if kind == "DATE":
        return value.isoformat()
    if kind == "BYTES":
        return base64.b64encode(value).decode()
    if kind in ("NUMERIC", "BIGNUMERIC"):
        return _decimal(value)
    if kind == "FLOAT":
        return repr(float(value))
    if kind == "JSON" and not isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _decimal(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"
