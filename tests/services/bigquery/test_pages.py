"""A tabledata.list page read from one file: only its row groups, columns the file lacks as nulls."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.bigquery.catalog import _rows

pytestmark = pytest.mark.local_only("hyp bigquery reads a page of Parquet row groups")


@pytest.mark.parametrize(("lo", "hi"), [(0, 10), (0, 3), (2, 7), (3, 6), (9, 10), (4, 4)])
def test_a_slice_across_row_groups(tmp_path, lo, hi):
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"a": list(range(10))}), path, row_group_size=3)
    schema = pa.schema([("a", pa.int64()), ("added", pa.string())])
    page = _rows(path, lo, hi, schema)
    assert page.schema == schema
    assert page.column("a").to_pylist() == list(range(lo, hi))
    assert page.column("added").null_count == hi - lo
