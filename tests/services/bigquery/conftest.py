"""A real `hyp bigquery` process on a free port (one per module) and Google's client pointed at it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.testing.hyp import HypProcess

PROJECT = "test-project"


@pytest.fixture(scope="module")
def bigquery_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HypProcess]:
    home = tmp_path_factory.mktemp("bigquery")
    env = dict(os.environ, HYP_WAREHOUSE_DIR=str(home / "warehouse"), HYP_PROJECT=PROJECT)
    with HypProcess("bigquery", log_path=home / "bigquery.log", env=env).start(60) as server:
        yield server


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
