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

import pyarrow as pa

from services.bigquery.schema import Field

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICRO = timedelta(microseconds=1)


def encode_rows(data: pa.Table, fields: tuple[Field, ...], int64_timestamp: bool = True) -> list[dict[str, Any]]:
    columns = [data.column(f.name).to_pylist() if f.name in data.column_names else None for f in fields]
    out = []
    for i in range(data.num_rows):
        out.append(
            {
                "f": [
                    {"v": _value(col[i] if col is not None else None, f, int64_timestamp)}
                    for f, col in zip(fields, columns, strict=True)
                ]
            }
        )
    return out


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
