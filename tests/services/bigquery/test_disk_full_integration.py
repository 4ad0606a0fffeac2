"""A full disk under `hyp bigquery`, through google-cloud-bigquery: a streaming insert, a query that writes a
table and a load job the disk refuses are answered with ``backendError`` naming the cause (503 for a request;
for a job, its errorResult, which the client raises as InternalServerError), keep nothing of the request,
leave every row already accepted readable, and work again as soon as there is space. (The client retries
``backendError`` by default: ``retry=None`` / ``job_retry=None`` show the answer itself.)"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from services.testing.hyp import HypProcess
from tests.fixtures.diskfull import disk_full

pytestmark = [
    pytest.mark.integration,
    pytest.mark.local_only("a full disk under the local process (BigQuery has no disk to fill)"),
]

PROJECT = "test-project"
_RANDOM = random.Random(7)
ROWS = [{"n": i, "text": _RANDOM.randbytes(100).hex()} for i in range(3000)]  # 600 KB, past the 64 KiB limit
REFUSED = "hyp bigquery cannot write its data folder (File too large)"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[HypProcess]:
    env = dict(os.environ, HYP_WAREHOUSE_DIR=str(tmp_path / "warehouse"), HYP_PROJECT=PROJECT)
    with HypProcess("bigquery", "--read-port", "0", log_path=tmp_path / "bigquery.log", env=env).start(60) as s:
        yield s


def leftovers(warehouse: Path) -> list[Path]:
    return [p for p in warehouse.rglob("*") if p.name.endswith(".tmp")]


def test_a_full_disk_refuses_writes_cleanly_and_recovers(
    server: HypProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", server.url)
    client = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials())
    client.create_dataset("full")
    schema = [bigquery.SchemaField("n", "INTEGER"), bigquery.SchemaField("text", "STRING")]
    table = client.create_table(bigquery.Table(f"{PROJECT}.full.t", schema=schema))
    assert client.insert_rows_json(table, ROWS[:10]) == []
    assert server.process is not None

    with disk_full(server.process.pid):
        with pytest.raises(exceptions.ServiceUnavailable) as err:
            client.insert_rows_json(table, ROWS, retry=None)
        assert REFUSED in err.value.message and "Free disk space and retry" in err.value.message

        query = (  # 300,000 distinct numbers from the 10 rows
            "CREATE TABLE full.copy AS SELECT n * 100000 + x AS n FROM full.t, UNNEST(GENERATE_ARRAY(1, 30000)) AS x"
            " WHERE n < 10"
        )
        # a job's errorResult: the client raises backendError as InternalServerError (its reason -> status table)
        with pytest.raises(exceptions.InternalServerError) as err:
            client.query(query, retry=None, job_retry=None).result(retry=None)
        assert REFUSED in str(err.value) and "reason: backendError" in str(err.value)

        csv = "".join(f"{r['n']},{r['text']}\n" for r in ROWS).encode()
        config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.CSV, schema=schema)
        job = client.load_table_from_file(io.BytesIO(csv), f"{PROJECT}.full.t", job_config=config)
        with pytest.raises(exceptions.InternalServerError):
            job.result(retry=None)
        assert job.error_result is not None and job.error_result["reason"] == "backendError"

        # what was accepted is still there and served; the server is alive
        assert next(iter(client.query("SELECT count(*) AS n FROM full.t").result()))["n"] == 10
        assert leftovers(tmp_path / "warehouse") == []
        with pytest.raises(exceptions.NotFound):
            client.get_table(f"{PROJECT}.full.copy")

    assert client.insert_rows_json(table, ROWS) == []  # space is back
    client.query(query).result()
    assert next(iter(client.query("SELECT count(*) AS n FROM full.t").result()))["n"] == 3010
    assert next(iter(client.query("SELECT count(*) AS n FROM full.copy").result()))["n"] == 20 * 30000
