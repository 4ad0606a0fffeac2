"""`hyp storage` as a real process on a free port, and Google's own client pointed at it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.testing.hyp import HypProcess
from services.testing.storage import storage_client


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
