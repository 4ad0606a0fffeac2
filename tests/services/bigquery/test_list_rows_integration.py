"""tabledata.list paging through Google's client: pages cut by row offset across many files (each read only for
the rows of its page), ``startIndex``, ``maxResults``, the page token, and BigQuery's refusal of both at once."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import bigquery

from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/rest/v2/tabledata/list"),
]

SF = bigquery.SchemaField
DAYS = ("2024-03-03", "2024-03-01", "2024-03-02")  # inserted out of day order: partitions list oldest first
BATCHES, PER_BATCH = 12, 7


@pytest.fixture
def table(client, dataset) -> tuple[str, list[int]]:
    """A DAY-partitioned table of 12 files (one per insert) in 3 partitions; the rows' ``seq`` in the table's
    file order (partition by partition, files in commit order, rows in file order)."""
    name = f"{PROJECT}.{dataset}.many"
    table = bigquery.Table(name, schema=[SF("ts", "TIMESTAMP"), SF("seq", "INTEGER"), SF("note", "STRING")])
    table.time_partitioning = bigquery.TimePartitioning(field="ts")
    client.create_table(table)
    order: dict[str, list[int]] = {day: [] for day in sorted(DAYS)}
    for batch in range(BATCHES):
        day = DAYS[batch % len(DAYS)]
        seqs = [batch * PER_BATCH + i for i in range(PER_BATCH)]
        rows = [{"ts": f"{day}T10:00:00Z", "seq": s, "note": f"n{s}"} for s in seqs]
        assert client.insert_rows_json(name, rows) == []
        order[day] += seqs
    return name, [s for day in sorted(order) for s in order[day]]


def test_pages_return_every_row_once_in_the_order_of_the_files(client, table) -> None:
    name, expected = table
    for size in (5, 7, 13, 100):
        pages = list(client.list_rows(name, page_size=size).pages)
        assert [p.num_items for p in pages[:-1]] == [size] * (len(pages) - 1)
        assert [r["seq"] for p in pages for r in p] == expected


def test_start_index_and_max_results_cut_the_listing(client, table) -> None:
    name, expected = table
    assert [r["seq"] for r in client.list_rows(name, start_index=30, max_results=20)] == expected[30:50]
    assert [r["seq"] for r in client.list_rows(name, start_index=30, page_size=4)] == expected[30:]
    rows = client.list_rows(name, start_index=len(expected) + 5)
    assert list(rows) == [] and rows.total_rows == len(expected)


def test_selected_fields_on_a_page(client, table) -> None:
    name, expected = table
    rows = list(client.list_rows(name, selected_fields=[SF("seq", "INTEGER")], start_index=3, max_results=4))
    assert [dict(r) for r in rows] == [{"seq": s} for s in expected[3:7]]


def test_page_token_and_start_index_together_are_refused(client, table) -> None:
    name, _ = table
    path = f"/projects/{PROJECT}/datasets/{name.split('.')[1]}/tables/many/data"
    first = client._connection.api_request("GET", path, query_params={"maxResults": 10})
    assert first["totalRows"] == str(BATCHES * PER_BATCH) and len(first["rows"]) == 10
    with pytest.raises(exceptions.BadRequest, match="pageToken and startIndex"):
        client._connection.api_request("GET", path, query_params={"pageToken": first["pageToken"], "startIndex": 1})
    with pytest.raises(exceptions.BadRequest, match="Invalid pageToken"):
        client._connection.api_request("GET", path, query_params={"pageToken": "not-a-token"})
