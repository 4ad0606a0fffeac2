"""The data folder: objects survive a restart, and a `hyp storage` killed with SIGKILL in the middle of an
upload leaves no partial object visible (the previous generation stays whole)."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.processes import stop_group, wait_for
from services.testing.hyp import HypProcess
from services.testing.storage import storage_client
from tests.services.storage.conftest import start_storage, unique_bucket

pytestmark = [pytest.mark.integration]

TOTAL = 8 * 1024 * 1024


@pytest.fixture
def server(tmp_path: Path) -> Iterator[HypProcess]:
    process = start_storage(tmp_path)
    try:
        yield process
    finally:
        process.stop()


def kill_and_restart(server: HypProcess) -> None:
    assert server.process is not None
    stop_group(server.process, first=signal.SIGKILL)
    server.start(timeout=60)


def temp_files(data: Path) -> list[Path]:
    return [p for p in (data / "tmp").iterdir() if p.stat().st_size > 0]


@pytest.mark.local_only("a crash of the local process and its data folder (Cloud Storage commits uploads atomically)")
def test_kill_mid_upload_leaves_no_partial_object(server: HypProcess, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    client = storage_client(server.url)
    bucket = client.create_bucket(unique_bucket())
    bucket.blob("obj").upload_from_string(b"version one")
    # a media upload announcing 8 MiB that sends only half, then the server dies
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    head = (
        f"POST /upload/storage/v1/b/{bucket.name}/o?uploadType=media&name=obj HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {TOTAL}\r\n\r\n"
    )
    try:
        sock.sendall(head.encode() + b"x" * (TOTAL // 2))
        wait_for(lambda: temp_files(data_dir), 20, "the upload's temporary file to fill", interval=0.05)
        kill_and_restart(server)
    finally:
        sock.close()

    client = storage_client(server.url)
    assert [b.name for b in client.list_blobs(bucket.name)] == ["obj"]
    assert client.bucket(bucket.name).blob("obj").download_as_bytes() == b"version one"
    assert temp_files(data_dir) == []
    stored = list((data_dir / "buckets" / bucket.name / "data").iterdir())
    assert len(stored) == 1  # only the committed generation's bytes


@pytest.mark.local_only("the data folder's housekeeping at start")
def test_uncommitted_data_files_are_removed_at_start(server: HypProcess, tmp_path: Path) -> None:
    client = storage_client(server.url)
    bucket = client.create_bucket(unique_bucket())
    bucket.blob("kept").upload_from_string(b"kept")
    data = tmp_path / "data" / "buckets" / bucket.name / "data"
    (data / "0123abcd.42").write_bytes(b"written, never committed")
    (tmp_path / "data" / "buckets" / "half-made-bucket").mkdir()  # no bucket.json: never committed
    kill_and_restart(server)
    client = storage_client(server.url)
    assert not (data / "0123abcd.42").exists() and len(list(data.iterdir())) == 1
    assert "half-made-bucket" not in [b.name for b in client.list_buckets()]
    assert client.bucket(bucket.name).blob("kept").download_as_bytes() == b"kept"


@pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/performing-resumable-uploads")
def test_resumable_session_survives_a_crash(server: HypProcess) -> None:
    client = storage_client(server.url)
    bucket = client.create_bucket(unique_bucket())
    start = httpx.post(
        f"{server.url}/upload/storage/v1/b/{bucket.name}/o",
        params={"uploadType": "resumable"},
        json={"name": "resumed", "contentType": "text/plain"},
    )
    assert start.status_code == 200
    session = start.headers["location"]
    part = b"a" * 262144
    first: Any = httpx.put(session, content=part, headers={"Content-Range": f"bytes 0-{len(part) - 1}/*"})
    assert first.status_code == 308 and first.headers["range"] == f"bytes=0-{len(part) - 1}"
    assert client.bucket(bucket.name).get_blob("resumed") is None  # not visible until complete

    kill_and_restart(server)
    status = httpx.put(session, headers={"Content-Range": "bytes */*"})
    assert status.status_code == 308 and status.headers["range"] == f"bytes=0-{len(part) - 1}"
    total = len(part) + 3
    last = httpx.put(session, content=b"end", headers={"Content-Range": f"bytes {len(part)}-{total - 1}/{total}"})
    assert last.status_code == 200 and last.json()["size"] == str(total)
    blob = storage_client(server.url).bucket(bucket.name).get_blob("resumed")
    assert blob.content_type == "text/plain" and blob.download_as_bytes() == part + b"end"
