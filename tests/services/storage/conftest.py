"""`hyp storage` as a real process on a free port, and Google's own client pointed at it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from services.testing.hyp import HypProcess


def storage_client(url: str) -> Any:  # google.cloud.storage.Client
    """google-cloud-storage as a user configures it for an emulator: ``STORAGE_EMULATOR_HOST`` (read when the
    client is built; set only for that moment, so the test process's environment stays as it was)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    with mock.patch.dict(os.environ, {"STORAGE_EMULATOR_HOST": url}):
        return storage.Client(project="hyp-local", credentials=AnonymousCredentials())


def unique_bucket(prefix: str = "b") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def start_storage(tmp: Path, port: int | None = None) -> HypProcess:
    return HypProcess("storage", "--data-dir", str(tmp / "data"), log_path=tmp / "storage.log", port=port).start(
        timeout=60
    )


@pytest.fixture(scope="module")
def storage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HypProcess]:
    server = start_storage(tmp_path_factory.mktemp("storage"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(storage_server: HypProcess) -> Any:
    return storage_client(storage_server.url)


@pytest.fixture
def bucket(client: Any) -> Any:
    return client.create_bucket(unique_bucket())
