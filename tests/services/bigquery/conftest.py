"""A real `hyp bigquery` process on a free port (one per module) and Google's client pointed at it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.processes import free_port
from services.testing.hyp import HypProcess

PROJECT = "test-project"


@pytest.fixture(scope="module")
def bigquery_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HypProcess]:
    home = tmp_path_factory.mktemp("bigquery")
    env = dict(os.environ, HYP_WAREHOUSE_DIR=str(home / "warehouse"), HYP_PROJECT=PROJECT)
    read_port = free_port()  # the Storage Read API (gRPC); by default the REST port + 1, which may be taken
    with HypProcess("bigquery", "--read-port", str(read_port), log_path=home / "bigquery.log", env=env).start(
        60
    ) as server:
        server.read_port = read_port  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def read_client(bigquery_server: HypProcess):  # -> bigquery_storage.BigQueryReadClient
    """Google's Storage Read client on an insecure channel to the server's Read API: the Storage client honours
    no emulator variable, so a user points it here with its transport (docs/bigquery.md)."""
    import grpc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

    channel = grpc.insecure_channel(
        f"127.0.0.1:{bigquery_server.read_port}",  # type: ignore[attr-defined]
        options=[("grpc.max_receive_message_length", -1)],
    )
    client = BigQueryReadClient(
        transport=BigQueryReadGrpcTransport(channel=channel, credentials=AnonymousCredentials())
    )
    yield client
    channel.close()


@pytest.fixture(scope="module")
def warehouse_dir(bigquery_server: HypProcess) -> Path:
    assert bigquery_server.env is not None
    return Path(bigquery_server.env["HYP_WAREHOUSE_DIR"])


@pytest.fixture
def client(bigquery_server: HypProcess, monkeypatch: pytest.MonkeyPatch):  # -> bigquery.Client
    """The client as a user sets it up against the emulator: BIGQUERY_EMULATOR_HOST and anonymous credentials."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bigquery_server.url)
    return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials())


@pytest.fixture
def dataset(client) -> Iterator[str]:  # a fresh dataset per test, deleted with its tables afterwards
    name = f"ds_{uuid.uuid4().hex[:10]}"
    client.create_dataset(name)
    yield name
    client.delete_dataset(name, delete_contents=True, not_found_ok=True)
