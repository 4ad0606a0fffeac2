"""Unit tests of the Read API's pieces (services/bigquery/read_api.py): the row restriction check, the selected
fields, the batches' types and sizes. Through the real clients: test_read_api_integration.py."""

from __future__ import annotations

import grpc
import pyarrow as pa
import pytest

from services.bigquery import read_api
from services.bigquery.read_api import ReadError
from services.bigquery.schema import Field

FIELDS = (
    Field("id", "INTEGER", "REQUIRED"),
    Field("Name", "STRING"),
    Field("r", "RECORD", fields=(Field("x", "FLOAT"),)),
)


@pytest.mark.parametrize(
    ("text", "kept"),
    [("id > 3", "id > 3"), ("name IS NOT NULL AND id BETWEEN 1 AND 2", "NOT name IS NULL AND id BETWEEN 1 AND 2")],
)
def test_a_filter_expression_is_kept(text: str, kept: str) -> None:
    assert read_api._restriction(text) == kept


@pytest.mark.parametrize(
    "text",
    [
        "id IN (SELECT 1)",
        "EXISTS (SELECT 1)",
        "true) UNION ALL SELECT 1 FROM t WHERE (true",
        "count(*) > 1",
        "sum(id) OVER () > 1",
        "id = 1; SELECT 2",
        "id >",
        "",
    ],
)
def test_anything_but_one_filter_expression_is_invalid(text: str) -> None:
    with pytest.raises(ReadError) as raised:
        read_api._restriction(text)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_selected_fields_keep_the_table_order_and_case() -> None:
    assert read_api._selected(FIELDS, []) == FIELDS
    assert [f.name for f in read_api._selected(FIELDS, ["R", "name"])] == ["Name", "r"]
    (record,) = read_api._selected(FIELDS, ["r.X"])
    assert record == FIELDS[2]  # its only field selected: the same record
    assert read_api._selected(FIELDS, ["r.x", "r"]) == read_api._selected(FIELDS, ["r", "r.x"]) == (FIELDS[2],)
    for bad in (["nope"], ["r.nope"], ["id.x"]):
        with pytest.raises(ReadError):
            read_api._selected(FIELDS, bad)


def test_batches_are_cast_to_the_session_schema() -> None:
    schema = read_api._schema((Field("n", "INTEGER"), Field("at", "TIMESTAMP"), Field("v", "NUMERIC")))
    raw = pa.record_batch(
        {
            "n": pa.array([1, None], pa.int32()),
            "at": pa.array([0, 1], pa.timestamp("us", tz="Etc/UTC")),
            "v": pa.array([1, 2], pa.decimal128(3, 1)),
        }
    )
    got = read_api._conform(raw, schema)
    assert got.schema.equals(schema)
    assert got.column("n").to_pylist() == [1, None]
    again = pa.ipc.read_record_batch(pa.py_buffer(got.serialize().to_pybytes()), schema)
    assert again.equals(got)


def test_big_batches_are_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(read_api, "BATCH_BYTES", 1000)
    batch = pa.record_batch({"x": pa.array(range(1000), pa.int64())})  # 8,000 bytes
    pieces = list(read_api._pieces(iter([batch])))
    assert len(pieces) == 8 and all(p.nbytes <= 1000 for p in pieces)
    assert pa.Table.from_batches(pieces).column("x").to_pylist() == list(range(1000))


@pytest.mark.parametrize("rows", [0, 1, 300, 70_000])  # row counts of one to three varint bytes
@pytest.mark.parametrize("first", [True, False])
def test_a_response_written_by_hand_is_the_message_googles_types_build(rows: int, first: bool) -> None:
    from google.cloud.bigquery_storage_v1 import types

    schema = read_api._schema((Field("n", "INTEGER"), Field("s", "STRING")))
    batch = pa.record_batch({"n": pa.array(range(rows), pa.int64()), "s": pa.array(["x" * 7] * rows)}, schema=schema)
    schema_bytes = schema.serialize().to_pybytes()
    got = read_api._Frame(types).response(batch, schema_bytes if first else None)
    assert isinstance(got, bytes)
    want = types.ReadRowsResponse.pb()()
    want.arrow_record_batch.serialized_record_batch = batch.serialize().to_pybytes()
    want.arrow_record_batch.row_count = rows
    want.row_count = rows
    if first:
        want.arrow_schema.serialized_schema = schema_bytes
    parsed = types.ReadRowsResponse.pb().FromString(got)
    assert parsed == want  # every field, nothing more (the order of fields on the wire aside)
    assert parsed.WhichOneof("schema") == ("arrow_schema" if first else None)
    decoded = pa.ipc.read_record_batch(pa.py_buffer(parsed.arrow_record_batch.serialized_record_batch), schema)
    assert decoded.equals(batch)
    assert read_api._as_bytes(got) is got and read_api._as_bytes(want) == want.SerializeToString()
