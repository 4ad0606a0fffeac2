"""Table schemas as BigQuery's REST API writes them, their Arrow types, and insertAll's row conversion.

A field is ``{"name", "type", "mode", "fields", "description"}``; types are stored under BigQuery's
canonical (legacy) names, as tables.get returns them (``INT64`` -> ``INTEGER``, ``STRUCT`` -> ``RECORD``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

import pyarrow as pa

from services.bigquery.errors import invalid
from services.bigquery.names import check_column

CANONICAL = {
    "STRING": "STRING",
    "BYTES": "BYTES",
    "INTEGER": "INTEGER",
    "INT64": "INTEGER",
    "FLOAT": "FLOAT",
    "FLOAT64": "FLOAT",
    "NUMERIC": "NUMERIC",
    "DECIMAL": "NUMERIC",
    "BIGNUMERIC": "BIGNUMERIC",
    "BIGDECIMAL": "BIGNUMERIC",
    "BOOLEAN": "BOOLEAN",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMP",
    "DATE": "DATE",
    "TIME": "TIME",
    "DATETIME": "DATETIME",
    "JSON": "JSON",
    "GEOGRAPHY": "GEOGRAPHY",
    "RECORD": "RECORD",
    "STRUCT": "RECORD",
}
MODES = ("NULLABLE", "REQUIRED", "REPEATED")
MAX_DEPTH = 15  # RECORD nesting BigQuery allows
_NUMERIC_MAX = Decimal("1e29")  # NUMERIC: 29 digits before the point, 9 after
_ARROW: dict[str, pa.DataType] = {
    "STRING": pa.string(),
    "BYTES": pa.binary(),
    "INTEGER": pa.int64(),
    "FLOAT": pa.float64(),
    "NUMERIC": pa.decimal128(38, 9),
    "BIGNUMERIC": pa.decimal256(76, 38),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "DATE": pa.date32(),
    "TIME": pa.time64("us"),
    "DATETIME": pa.timestamp("us"),
    "JSON": pa.string(),
    "GEOGRAPHY": pa.string(),
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    mode: str = "NULLABLE"
    fields: tuple[Field, ...] = ()
    description: str | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "mode": self.mode}
        if self.fields:
            out["fields"] = [f.to_api() for f in self.fields]
        if self.description is not None:
            out["description"] = self.description
        return out

    @cached_property
    def lookup(self) -> tuple[dict[str, Field], dict[str, Field]]:
        """A RECORD's fields by exact name and by lower-cased name (column names are case-insensitive)."""
        return {f.name: f for f in self.fields}, {f.name.lower(): f for f in self.fields}

    def arrow(self) -> pa.Field:
        if self.type == "RECORD":
            kind: pa.DataType = pa.struct([f.arrow() for f in self.fields])
        else:
            kind = _ARROW[self.type]
        if self.mode == "REPEATED":
            return pa.field(self.name, pa.list_(pa.field("element", kind, nullable=False)), nullable=False)
        return pa.field(self.name, kind, nullable=self.mode != "REQUIRED")


def parse_fields(raw: Any, prefix: str = "", depth: int = 1) -> tuple[Field, ...]:
    """A REST ``schema.fields`` list -> Fields; BigQuery's 400 for bad names, types, modes or duplicates."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise invalid("Invalid schema: fields must be a list.", "schema")
    if depth > MAX_DEPTH:
        raise invalid(f"Field {prefix.rstrip('.')}: records may be nested at most {MAX_DEPTH} levels.", "schema")
    fields: list[Field] = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise invalid("Invalid schema: every field needs a name.", "schema")
        name = check_column(item["name"], prefix + str(item["name"]))
        if name.lower() in seen:
            raise invalid(f"Field {prefix}{name} duplicates another field (names are case-insensitive).", "schema")
        seen.add(name.lower())
        kind = CANONICAL.get(str(item.get("type", "")).upper())
        if kind is None:
            raise invalid(f"Invalid field type {item.get('type')!r} for field {prefix}{name}.", prefix + name)
        mode = str(item.get("mode") or "NULLABLE").upper()
        if mode not in MODES:
            raise invalid(f"Invalid mode {item.get('mode')!r} for field {prefix}{name}.", prefix + name)
        children = parse_fields(item.get("fields"), f"{prefix}{name}.", depth + 1) if kind == "RECORD" else ()
        if kind == "RECORD" and not children:
            raise invalid(f"Field {prefix}{name} is type RECORD but has no schema.", prefix + name)
        description = item.get("description")
        fields.append(Field(name, kind, mode, children, description if isinstance(description, str) else None))
    return tuple(fields)


def arrow_field(name: str, kind: pa.DataType, mode: str = "NULLABLE") -> Field:
    """The one Arrow -> BigQuery mapping, for query results and for the warehouse's own tables alike.

    As BigQuery types them: a timestamp with a zone is a TIMESTAMP (an instant: the client returns an aware
    UTC datetime), one without a zone a DATETIME (a civil time: a naive datetime). The warehouse's naive
    times are UTC instants, so the workshop's tables show them with a zone (workshop.py, jobs.ParquetSource).
    """
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        inner = arrow_field(name, kind.value_type)
        return Field(name, inner.type, "REPEATED", inner.fields)
    if pa.types.is_struct(kind):
        children = tuple(arrow_field(kind.field(i).name, kind.field(i).type) for i in range(kind.num_fields))
        return Field(name, "RECORD", mode, children)
    if pa.types.is_boolean(kind):
        return Field(name, "BOOLEAN", mode)
    if pa.types.is_integer(kind):
        return Field(name, "INTEGER", mode)
    if pa.types.is_floating(kind):
        return Field(name, "FLOAT", mode)
    if pa.types.is_decimal(kind):
        return Field(name, "NUMERIC" if kind.scale <= 9 and kind.precision - kind.scale <= 29 else "BIGNUMERIC", mode)
    if pa.types.is_timestamp(kind):
        return Field(name, "TIMESTAMP" if kind.tz else "DATETIME", mode)
    if pa.types.is_date(kind):
        return Field(name, "DATE", mode)
    if pa.types.is_time(kind):
        return Field(name, "TIME", mode)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return Field(name, "BYTES", mode)
    return Field(name, "STRING", mode)


def arrow_schema(fields: tuple[Field, ...]) -> pa.Schema:
    return pa.schema([f.arrow() for f in fields])


class RowError(ValueError):
    """One problem with one row: BigQuery's insertErrors entry (reason ``invalid``, the field's location)."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(message)
        self.location, self.message = location, message


def row_type(fields: tuple[Field, ...]) -> Field:
    """The table's row as one RECORD, what :func:`convert_row` takes (make it once per batch)."""
    return Field("", "RECORD", "REQUIRED", fields)


def convert_row(row: Any, root: Field, ignore_unknown: bool) -> dict[str, Any]:
    """An insertAll ``json`` object -> Python values for the table's Arrow schema; RowError when invalid."""
    if not isinstance(row, dict):
        raise RowError("", "Row must be a JSON object.")
    return _record(row, root, "", ignore_unknown)


def _record(value: dict[str, Any], record: Field, prefix: str, ignore_unknown: bool) -> dict[str, Any]:
    exact, lower = record.lookup
    fields = record.fields
    out: dict[str, Any] = {}
    for key, item in value.items():
        field = exact.get(key) or lower.get(str(key).lower())
        if field is None:
            if ignore_unknown:
                continue
            raise RowError(prefix + str(key), f"no such field: {prefix}{key}.")
        out[field.name] = _field(item, field, prefix, ignore_unknown)
    if len(out) < len(fields):
        for field in fields:
            if field.name not in out:
                out[field.name] = _field(None, field, prefix, ignore_unknown)
    return out


def _field(value: Any, field: Field, prefix: str, ignore_unknown: bool) -> Any:
    if value is None:
        if field.mode == "REQUIRED":
            raise RowError(prefix + field.name, f"Missing required field: {prefix}{field.name}.")
        return [] if field.mode == "REPEATED" else None
    if field.mode == "REPEATED":
        if not isinstance(value, list):
            raise RowError(prefix + field.name, f"Expected an array for repeated field {prefix}{field.name}.")
        out = []
        for item in value:
            if item is None:
                raise RowError(prefix + field.name, f"Null value in an array: {prefix}{field.name}.")
            out.append(_scalar(item, field, prefix, ignore_unknown))
        return out
    if isinstance(value, list):
        raise RowError(prefix + field.name, f"Array specified for non-repeated field: {prefix}{field.name}.")
    return _scalar(value, field, prefix, ignore_unknown)


def _scalar(value: Any, field: Field, prefix: str, ignore_unknown: bool) -> Any:
    kind = field.type
    try:
        if kind == "RECORD":
            if not isinstance(value, dict):
                raise ValueError("a JSON object")
            return _record(value, field, f"{prefix}{field.name}.", ignore_unknown)
        return _CONVERT[kind](value)
    except RowError:
        raise
    except (ValueError, TypeError, InvalidOperation, OverflowError) as exc:
        location = prefix + field.name
        raise RowError(location, f"Cannot convert value to {kind.lower()}: {value!r} ({exc}).") from None


def _string(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise TypeError("not a string")


def _integer(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise TypeError("a boolean")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float | Decimal) and value == int(value):
        result = int(value)
    elif isinstance(value, str):
        result = int(value.strip())
    else:
        raise TypeError("not an integer")
    if not -(2**63) <= result < 2**63:
        raise OverflowError("out of the INT64 range")
    return result


def _float(value: Any) -> float:
    if type(value) is float:
        return value
    if isinstance(value, bool):
        raise TypeError("a boolean")
    if isinstance(value, int | float | Decimal):  # Decimal: a SQL literal such as 0.5 (DML)
        return float(value)
    if isinstance(value, str):
        return float(value)
    raise TypeError("not a number")


def _numeric(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise TypeError("not a number")
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite() or abs(number) >= _NUMERIC_MAX:
        raise ValueError("out of the NUMERIC range")
    if number.as_tuple().exponent < -9:  # type: ignore[operator]
        raise ValueError("more than 9 digits after the decimal point")
    return number


def _bignumeric(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise TypeError("not a number")
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite() or abs(number) >= Decimal("1e38"):
        raise ValueError("out of the BIGNUMERIC range")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise TypeError("not a boolean")


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):  # from a Parquet load
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, bool):
        raise TypeError("a boolean")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str):
        raise TypeError("not a timestamp")
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise TypeError("not a date string")
    return date.fromisoformat(value.strip())


def _time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if not isinstance(value, str):
        raise TypeError("not a time string")
    return time.fromisoformat(value.strip())


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value
    if not isinstance(value, str):
        raise TypeError("not a datetime string")
    parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    if parsed.tzinfo is not None:
        raise ValueError("a DATETIME has no time zone")
    return parsed


def _json(value: Any) -> str:
    if isinstance(value, str):
        json.loads(value)  # ValueError when it is not JSON text
        return value
    return json.dumps(value, separators=(",", ":"))


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError("not a base64 string")
    return base64.b64decode(value, validate=True)


_CONVERT = {
    "STRING": _string,
    "GEOGRAPHY": _string,
    "BYTES": _bytes,
    "INTEGER": _integer,
    "FLOAT": _float,
    "NUMERIC": _numeric,
    "BIGNUMERIC": _bignumeric,
    "BOOLEAN": _boolean,
    "TIMESTAMP": _timestamp,
    "DATE": _date,
    "TIME": _time,
    "DATETIME": _datetime,
    "JSON": _json,
}
