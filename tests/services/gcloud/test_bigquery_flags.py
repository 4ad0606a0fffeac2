"""goccy/bigquery-emulator's command line (testcontainers-java's BigQueryEmulatorContainer runs `--project
test-project` and waits for 9050 and 9060) mapped to `hyp bigquery`, and one real start from goccy's flags."""

from __future__ import annotations

import socket
import sys

import pytest

from services.common.processes import free_port
from services.gcloud.bigquery import EmulatorArgs, UsageError, main, parse
from services.testing.bigquery import bigquery_client
from tests.fixtures.started import logged_process

pytestmark = pytest.mark.local_only("goccy/bigquery-emulator's command line, a community emulator's, not GCP's")


def test_testcontainers_line() -> None:
    assert parse(["--project", "test-project"]) == EmulatorArgs("test-project")


def test_every_goccy_flag_in_both_forms() -> None:
    args = parse(["--project=p", "--dataset=a", "--dataset", "b,c", "--port", "9999", "--grpc-port=9998",
                  "--log-level=debug", "--log-format", "json", "--database=/tmp/db", "--host=127.0.0.1"])  # fmt: skip
    assert args == EmulatorArgs("p", ("a", "b", "c"), 9999, 9998, "127.0.0.1", "DEBUG", "/tmp/db")
    assert args.hyp_args("/w") == ["--host", "127.0.0.1", "--port", "9999", "--warehouse-dir", "/w"]


def test_version() -> None:
    assert parse(["--version"]) is None and parse(["-v"]) is None


@pytest.mark.parametrize(
    "argv",
    [
        [],  # --project is required, as goccy's
        ["--project", "p", "--port", "http"],
        ["--project", "p", "--log-level", "trace"],
        ["--project", "p", "--log-format", "xml"],
        ["--project", "p", "--data-from-yaml=data.yaml"],
        ["--project", "p", "--bogus"],
        ["--project"],
    ],
)
def test_what_goccy_refuses_or_is_not_mapped_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse(argv)


def test_usage_error_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "1"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("bigquery-emulator: --project is required")


def test_a_database_that_is_a_file_is_refused(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "db.sqlite").write_bytes(b"")
    assert main(["--project", "p", f"--database={tmp_path / 'db.sqlite'}"]) == 2
    assert "a file" in capsys.readouterr().err


@pytest.mark.integration
def test_goccys_flags_start_hyp_bigquery_with_the_dataset_and_both_ports(tmp_path) -> None:
    port, grpc_port = free_port(), free_port()
    log = tmp_path / "bq.log"
    database = tmp_path / "db"
    argv = [sys.executable, "-m", "services.gcloud.bigquery", "--project=test-project", "--dataset=dataset1",
            f"--port={port}", f"--grpc-port={grpc_port}", "--host=127.0.0.1", f"--database={database}"]  # fmt: skip
    with logged_process(argv, log, f"REST server listening at 127.0.0.1:{port}", 60.0):
        assert f"[bigquery-emulator] gRPC server listening at 127.0.0.1:{grpc_port}" in log.read_text()
        with socket.create_connection(("127.0.0.1", grpc_port), timeout=5):
            pass  # the Storage API's port listens (what testcontainers' port wait checks)
        client = bigquery_client(f"http://127.0.0.1:{port}", "test-project")
        assert "dataset1" in {d.dataset_id for d in client.list_datasets()}
        rows = list(client.query("SELECT 17 AS n").result())
        assert rows[0]["n"] == 17
    assert (database).is_dir() and any(database.rglob("dataset.json"))  # --database keeps the tables


def test_the_storage_api_port_answers_unimplemented() -> None:
    import grpc

    from services.gcloud.bigquery import _storage_api_placeholder

    port = free_port()
    server = _storage_api_placeholder("127.0.0.1", port)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/google.cloud.bigquery.storage.v1.BigQueryRead/CreateReadSession")
            with pytest.raises(grpc.RpcError) as raised:
                call(b"", timeout=5)
            assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(None)  # type: ignore[attr-defined]
