"""BigQuery's REST row format (``{"f": [{"v": ...}]}``) as ``rows.rows_json`` writes it column by column with
Arrow: the same values as the value-by-value encoder, for every kind of column, nulls and text JSON must
escape included."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest

from services.bigquery import rows
from services.bigquery.schema import Field

pytestmark = pytest.mark.local_only("the server's row encoder checked against its own value-by-value encoder")

UTC = dt.UTC
FIELDS = (
    Field("s", "STRING"),
    Field("i", "INTEGER"),
    Field("f", "FLOAT"),
    Field("b", "BOOLEAN"),
    Field("t", "TIMESTAMP"),
    Field("d", "DATETIME"),
    Field("n", "NUMERIC"),
    Field("r", "INTEGER", "REPEATED"),
    Field("st", "RECORD", fields=(Field("x", "INTEGER"), Field("y", "STRING"))),
    Field("missing", "STRING"),
)


def _table(strings: list[str | None], floats: list[float | None]) -> pa.Table:
    n = len(strings)
    when = dt.datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)
    return pa.table(
        {
            "s": strings,
            "i": pa.array([k if k % 2 else None for k in range(n)], pa.int64()),
            "f": pa.array(floats, pa.float64()),
            "b": [None if k % 3 == 0 else bool(k % 2) for k in range(n)],
            "t": pa.array([when - dt.timedelta(days=20_000 * k) for k in range(n)], pa.timestamp("us", tz=UTC)),
            "d": pa.array([dt.datetime(2026, 1, 1, 1, 2, 3)] * n, pa.timestamp("us")),
            "n": pa.array([Decimal("1.5")] * n, pa.decimal128(38, 9)),
            "r": pa.array([[k, k + 1] if k % 2 else [] for k in range(n)], pa.list_(pa.int64())),
            "st": pa.array([{"x": k, "y": "a"} for k in range(n)]),
        }
    )


def _reference(data: pa.Table, fields: tuple[Field, ...], int64: bool) -> list[list]:
    columns = [data.column(f.name).to_pylist() if f.name in data.column_names else None for f in fields]
    return [
        [rows._value(c[k] if c is not None else None, f, int64) for f, c in zip(fields, columns, strict=True)]
        for k in range(data.num_rows)
    ]


def _decoded(data: pa.Table, fields: tuple[Field, ...], int64: bool) -> list[list]:
    parsed = json.loads(rows.rows_json(data, fields, int64))
    return [[cell["v"] for cell in row["f"]] for row in parsed]


def _floats_as_numbers(table: list[list]) -> list[list]:
    return [[float(v) if k == 2 and v is not None else v for k, v in enumerate(row)] for row in table]


@pytest.mark.parametrize("int64", [True, False])
def test_every_column_kind_matches_the_value_by_value_encoder(int64: bool) -> None:
    data = _table(["a", "ünï", None, "x y", "", "T123"], [1.5, None, 1e20, -0.0, 1 / 3, 2.5e-310])
    assert _floats_as_numbers(_decoded(data, FIELDS, int64)) == _floats_as_numbers(_reference(data, FIELDS, int64))


def test_text_json_must_escape_and_non_finite_floats_take_the_careful_path() -> None:
    data = _table(['q"uote', "back\\slash", "new\nline", "tab\t", "\x01", "ok"], [float("nan"), 1.0] * 3)
    decoded = _decoded(data, FIELDS, True)
    assert [r[0] for r in decoded] == ['q"uote', "back\\slash", "new\nline", "tab\t", "\x01", "ok"]
    assert [r[2] for r in decoded] == ["nan", "1.0"] * 3


def test_empty_pages_and_no_columns() -> None:
    data = _table(["a", "b"], [1.0, 2.0])
    assert rows.rows_json(data.slice(0, 0), FIELDS) == b"[]"
    assert json.loads(rows.rows_json(data, ())) == [{"f": []}, {"f": []}]
    assert rows.encode_rows(data, FIELDS)[0]["f"][0] == {"v": "a"}
