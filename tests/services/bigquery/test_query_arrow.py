"""jobs.query's ``queryResultsFormat: ARROW`` through Google's client (``query_and_wait(...,
query_results_format="ARROW")``): the first page as Arrow, the rest from the job's ``_default`` Read API stream,
the same rows as the JSON path; serialization options not served here are refused, never ignored."""

from __future__ import annotations

import pytest

QUERY = """
SELECT n, CAST(n AS STRING) AS s, n / 4 AS f, MOD(n, 2) = 0 AS even, DATE_ADD(DATE '2024-01-01', INTERVAL n DAY) AS d,
  TIMESTAMP_ADD(TIMESTAMP '2024-01-01 00:00:00+00', INTERVAL n SECOND) AS ts, CAST(n AS NUMERIC) AS num,
  STRUCT(n AS a, 'x' AS b) AS rec, [n, n + 1] AS arr, IF(MOD(n, 3) = 0, NULL, n) AS maybe
FROM UNNEST(GENERATE_ARRAY(1, 50)) AS n
ORDER BY n
"""


def _json_rows(client, sql: str) -> list[dict]:
    return client.query_and_wait(sql).to_arrow(create_bqstorage_client=False).to_pylist()


def test_result_in_first_page_needs_no_storage_client(client) -> None:
    rows = client.query_and_wait(QUERY, query_results_format="ARROW")
    table = rows.to_arrow()  # no bqstorage_client: the first page holds every row, so none is created
    assert table.num_rows == 50
    assert table.to_pylist() == _json_rows(client, QUERY)
    assert rows.total_rows == 50


def test_result_past_first_page_reads_the_job_stream(client, read_client) -> None:
    rows = client.query_and_wait(QUERY, query_results_format="ARROW", page_size=7)
    assert rows.job_id  # more rows than the first page: a job is kept, its _default stream read
    table = rows.to_arrow(bqstorage_client=read_client)
    assert table.num_rows == 50
    assert table.to_pylist() == _json_rows(client, QUERY)


def test_empty_result_keeps_its_schema(client) -> None:
    table = client.query_and_wait("SELECT 1 AS x, 'a' AS y FROM UNNEST([1]) WHERE FALSE", query_results_format="ARROW")
    arrow = table.to_arrow()
    assert arrow.num_rows == 0
    assert arrow.column_names == ["x", "y"]


def test_compression_not_served_is_refused(client) -> None:
    from google.api_core.exceptions import BadRequest

    with pytest.raises(BadRequest, match=r"arrowSerializationOptions\.bufferCompression") as raised:
        client.query_and_wait("SELECT 1 AS x", query_results_format="ARROW", compression_codec="LZ4_FRAME")
    assert raised.value.errors[0]["reason"] == "invalid"


def test_default_stream_of_unknown_job_is_not_found(read_client) -> None:
    from google.api_core.exceptions import NotFound

    with pytest.raises(NotFound):
        next(iter(read_client.read_rows("projects/test-project/locations/US/jobs/no_such_job/streams/_default")))


def test_json_results_unchanged(client) -> None:  # the default (no queryResultsFormat) still answers rows
    assert [tuple(r.values()) for r in client.query_and_wait("SELECT 1 AS x UNION ALL SELECT 2 ORDER BY x")] == [
        (1,),
        (2,),
    ]
