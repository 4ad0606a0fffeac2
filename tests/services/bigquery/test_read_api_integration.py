"""The BigQuery Storage Read API of `hyp bigquery` through Google's clients: google-cloud-bigquery's
``to_arrow()`` / ``to_dataframe(bqstorage_client=...)`` of a query's result and of a table (the Storage path,
checked to be taken), and google-cloud-bigquery-storage's ``BigQueryReadClient`` on its own: read options
(``selected_fields``, ``row_restriction``), ``offset``, and the refusals (NotFound, InvalidArgument)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import bigquery
from google.cloud.bigquery_storage_v1 import types

from services.common.processes import free_port
from services.testing.hyp import HypProcess
from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity(
        "https://cloud.google.com/bigquery/docs/reference/storage/rpc/google.cloud.bigquery.storage.v1"
    ),
]

SF = bigquery.SchemaField
SCHEMA = [
    SF("id", "INTEGER", "REQUIRED"),
    SF("name", "STRING"),
    SF("amount", "NUMERIC"),
    SF("at", "TIMESTAMP"),
    SF("day", "DATE"),
    SF("doc", "JSON"),
    SF("tags", "STRING", "REPEATED"),
    SF(
        "order",
        "RECORD",
        fields=[
            SF("total", "FLOAT"),
            SF("items", "RECORD", "REPEATED", fields=[SF("sku", "STRING"), SF("n", "INTEGER")]),
        ],
    ),
]
ROWS = 300


@pytest.fixture(scope="module")
def bigquery_server(tmp_path_factory: pytest.TempPathFactory):  # -> HypProcess, as conftest's, result tables on
    """`hyp bigquery` with HYP_BIGQUERY_QUERY_RESULT_TABLES: query jobs report their anonymous destination table,
    so google-cloud-bigquery reads results through the Read API when given a bqstorage_client."""
    home = tmp_path_factory.mktemp("bigquery-read")
    env = dict(
        os.environ,
        HYP_WAREHOUSE_DIR=str(home / "warehouse"),
        HYP_PROJECT=PROJECT,
        HYP_BIGQUERY_QUERY_RESULT_TABLES="true",
    )
    read_port = free_port()
    server = HypProcess("bigquery", "--read-port", str(read_port), log_path=home / "bigquery.log", env=env)
    with server.start(60):
        server.read_port = read_port  # type: ignore[attr-defined]
        yield server


class Counting:
    """Google's Read client as it is, counting the read sessions google-cloud-bigquery opens through it: the proof
    that ``to_arrow(bqstorage_client=...)`` took the Storage path and did not fall back to tabledata.list."""

    def __init__(self, client: Any) -> None:
        self.client, self.sessions = client, 0

    def create_read_session(self, *args: Any, **kwargs: Any) -> Any:
        self.sessions += 1
        return self.client.create_read_session(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def _row(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "name": None if i % 7 == 0 else f"n{i}",
        "amount": f"{i}.{i % 100:02d}",
        "at": f"2024-03-{1 + i % 28:02d}T10:{i % 60:02d}:00.123456Z",
        "day": f"2024-02-{1 + i % 28:02d}",
        "doc": f'{{"k": {i}}}',
        "tags": [f"t{j}" for j in range(i % 3)],
        "order": {"total": i * 1.5, "items": [{"sku": f"s{i}-{j}", "n": j} for j in range(i % 4)]},
    }


@pytest.fixture
def table(client, dataset) -> str:
    name = f"{PROJECT}.{dataset}.events"
    client.create_table(bigquery.Table(name, schema=SCHEMA))
    for start in range(0, ROWS, 100):
        assert client.insert_rows_json(name, [_row(i) for i in range(start, start + 100)]) == []
    return name


def test_query_result_through_the_read_api_equals_the_rest_pages(client, read_client, table) -> None:
    sql = f"SELECT * FROM `{table}` WHERE id >= 5 ORDER BY id"
    job = client.query(sql)
    job.result()
    assert job.destination is not None and job.destination.dataset_id.startswith("_")  # anonymous, as on BigQuery
    assert job.destination.table_id.startswith("anon")
    rest = job.result().to_arrow(create_bqstorage_client=False)
    counting = Counting(read_client)
    storage = client.query(sql).result().to_arrow(bqstorage_client=counting)
    assert counting.sessions == 1
    assert storage.num_rows == ROWS - 5
    assert storage.column_names == rest.column_names
    assert storage.to_pylist() == rest.to_pylist()
    flat = ["id", "name", "amount", "at", "day", "doc"]
    frame = client.query(sql).result().to_dataframe(bqstorage_client=counting)[flat]
    assert counting.sessions == 2
    assert frame.equals(job.result().to_dataframe(create_bqstorage_client=False)[flat])
    assert str(frame["at"].dtype) == "datetime64[us, UTC]"


def test_anonymous_result_table_is_listed_and_read(client, read_client, table) -> None:
    job = client.query(f"SELECT id, name FROM `{table}` WHERE id < 50 ORDER BY id")
    job.result()
    listed = client.list_rows(job.destination, selected_fields=[SF("id", "INTEGER")])
    assert [r["id"] for r in listed] == list(range(50))
    got = client.get_table(job.destination)
    assert got.num_rows == 50 and [f.name for f in got.schema] == ["id", "name"]


def test_list_rows_of_a_table_through_the_read_api(client, read_client, table) -> None:
    counting = Counting(read_client)
    fields = [SF("id", "INTEGER", "REQUIRED"), SF("order", "RECORD")]
    got = client.list_rows(table, selected_fields=[client.get_table(table).schema[i] for i in (0, 7)])
    arrow = got.to_arrow(bqstorage_client=counting)
    assert counting.sessions == 1
    assert arrow.column_names == [f.name for f in fields]
    by_id = {r["id"]: r for r in arrow.to_pylist()}
    assert sorted(by_id) == list(range(ROWS))
    assert by_id[7]["order"] == {"total": 10.5, "items": [{"sku": f"s7-{j}", "n": j} for j in range(3)]}


def _session(read_client, table: str, **options: Any) -> Any:
    project, dataset, name = table.split(".")
    requested = types.ReadSession(
        table=f"projects/{project}/datasets/{dataset}/tables/{name}",
        data_format=types.DataFormat.ARROW,
        read_options=types.ReadSession.TableReadOptions(**options),
    )
    return read_client.create_read_session(parent=f"projects/{project}", read_session=requested, max_stream_count=1)


def _rows(read_client, session: Any, offset: int = 0) -> list[dict[str, Any]]:
    if not session.streams:
        return []
    return read_client.read_rows(session.streams[0].name, offset=offset).to_arrow(session).to_pylist()


def test_selected_fields_come_in_the_table_order(read_client, table) -> None:
    session = _session(read_client, table, selected_fields=["day", "ID"])
    rows = _rows(read_client, session)
    assert list(rows[0]) == ["id", "day"]  # the table's order, not the request's (as documented)
    assert sorted(r["id"] for r in rows) == list(range(ROWS))


def test_a_nested_field_is_selected_inside_its_record(read_client, table) -> None:
    session = _session(read_client, table, selected_fields=["order.total", "id"], row_restriction="id < 3")
    rows = sorted(_rows(read_client, session), key=lambda r: r["id"])
    assert rows == [{"id": i, "order": {"total": i * 1.5}} for i in range(3)]


def test_read_options_on_a_query_result(client, read_client, table) -> None:
    job = client.query(f"SELECT id, name, `order` FROM `{table}`")
    job.result()
    dest = job.destination
    result = f"{dest.project}.{dest.dataset_id}.{dest.table_id}"
    session = _session(read_client, result, selected_fields=["order.total"], row_restriction="id IN (1, 2)")
    assert sorted(r["order"]["total"] for r in _rows(read_client, session)) == [1.5, 3.0]


def test_row_restriction_filters_rows(read_client, table) -> None:
    session = _session(
        read_client, table, selected_fields=["id", "name"], row_restriction="id BETWEEN 10 AND 20 AND name IS NOT NULL"
    )
    assert sorted(r["id"] for r in _rows(read_client, session)) == [i for i in range(10, 21) if i % 7]
    none = _session(read_client, table, row_restriction="order.total > 1e9")
    assert _rows(read_client, none) == []


def test_offset_resumes_a_stream(client, read_client, table) -> None:
    job = client.query(f"SELECT id FROM `{table}` ORDER BY id")
    job.result()
    dest = job.destination
    session = _session(read_client, f"{dest.project}.{dest.dataset_id}.{dest.table_id}")
    assert session.estimated_row_count == ROWS
    assert [r["id"] for r in _rows(read_client, session, offset=123)] == list(range(123, ROWS))


def test_an_empty_result_has_no_stream(client, read_client, table) -> None:
    job = client.query(f"SELECT id FROM `{table}` WHERE id < 0")
    job.result()
    dest = job.destination
    session = _session(read_client, f"{dest.project}.{dest.dataset_id}.{dest.table_id}")
    assert list(session.streams) == []
    assert (
        client.query(f"SELECT id FROM `{table}` WHERE id < 0").result().to_arrow(bqstorage_client=read_client).num_rows
        == 0
    )


def test_a_missing_table_is_not_found(read_client, dataset) -> None:
    with pytest.raises(exceptions.NotFound):
        _session(read_client, f"{PROJECT}.{dataset}.nothing_here")
    with pytest.raises(exceptions.NotFound):
        _session(read_client, f"{PROJECT}.no_such_dataset.t")
    with pytest.raises(exceptions.NotFound):
        read_client.read_rows(f"projects/{PROJECT}/locations/us/sessions/nope/streams/0").to_arrow()


@pytest.mark.parametrize(
    "restriction",
    [
        "id IN (SELECT id FROM read_csv('/etc/passwd'))",
        "EXISTS (SELECT 1 FROM read_csv('/etc/passwd'))",
        "length(read_text('/etc/passwd')) > 0",
        "true) UNION ALL SELECT * FROM read_csv('/etc/passwd') WHERE (true",
        "count(*) > 1",
        "id = 1; DROP TABLE x",
    ],
)
def test_a_hostile_or_unsupported_row_restriction_is_refused(read_client, table, restriction: str) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        session = _session(read_client, table, row_restriction=restriction)
        _rows(read_client, session)


def test_unsupported_requests_are_invalid(read_client, table) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="do not exist"):
        _session(read_client, table, selected_fields=["id", "nope"])
    with pytest.raises(exceptions.InvalidArgument, match="REPEATED"):
        _session(read_client, table, selected_fields=["order.items.sku"])
    project, dataset, name = table.split(".")
    avro = types.ReadSession(
        table=f"projects/{project}/datasets/{dataset}/tables/{name}", data_format=types.DataFormat.AVRO
    )
    with pytest.raises(exceptions.InvalidArgument, match="ARROW"):
        read_client.create_read_session(parent=f"projects/{project}", read_session=avro, max_stream_count=1)


@pytest.mark.local_only("the Read API beside the REST port is this emulator's layout")
def test_a_taken_default_read_port_moves_the_read_api_and_the_rest_api_still_starts(tmp_path) -> None:
    """The default Read API port (REST port + 1) held by another process: `hyp bigquery` serves REST anyway and
    the Read API on a free port, logged (it failed to start when grpc raised instead of returning 0)."""
    from services.testing.bigquery import bigquery_client
    from tests.fixtures.ports import port_with_next_held

    port, holder = port_with_next_held()
    holder.listen()
    env = dict(os.environ, HYP_WAREHOUSE_DIR=str(tmp_path / "warehouse"), HYP_PROJECT=PROJECT)
    env.pop("HYP_BIGQUERY_READ_PORT", None)
    try:
        server = HypProcess("bigquery", log_path=tmp_path / "bigquery.log", env=env, port=port)
        with server.start(60):
            rows = bigquery_client(server.url, project=PROJECT).query_and_wait("SELECT 2 AS n")
            assert [r.n for r in rows] == [2]
            assert f"port {port + 1} is taken; serving on" in (tmp_path / "bigquery.log").read_text()
    finally:
        holder.close()
