"""A full disk under `hyp storage`, through google-cloud-storage: every write it refuses answers 503
``backendError`` naming the cause, keeps nothing of the request (no temporary file, no orphan bytes, the old
generation still live), and writes work again as soon as there is space. (The client retries a 503 with
backoff by default: ``retry=None`` here shows the answer itself.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from google.api_core import exceptions

from services.testing.storage import storage_client
from tests.fixtures.diskfull import disk_full
from tests.services.storage.conftest import start_storage, unique_bucket

pytestmark = [
    pytest.mark.integration,
    pytest.mark.local_only("a full disk under the local process (Cloud Storage has no disk to fill)"),
]

BIG = b"z" * (512 * 1024)  # past the 64 KiB the limit allows a file


def test_a_full_disk_refuses_writes_cleanly_and_recovers(tmp_path: Path) -> None:
    server = start_storage(tmp_path)
    try:
        assert server.process is not None
        client = storage_client(server.url)
        bucket = client.create_bucket(unique_bucket())
        bucket.blob("obj").upload_from_string(b"version one")
        data = tmp_path / "data"

        with disk_full(server.process.pid):
            with pytest.raises(exceptions.ServiceUnavailable) as err:
                bucket.blob("obj").upload_from_string(BIG, retry=None)  # a replacement: multipart upload
            assert "cannot write its data folder (File too large)" in err.value.message
            assert "Free disk space and retry" in err.value.message
            resumable = bucket.blob("big", chunk_size=256 * 1024)  # a resumable upload, chunk by chunk
            with pytest.raises(exceptions.ServiceUnavailable):
                resumable.upload_from_string(BIG, retry=None)
            # what was there is untouched and still served; the server is alive
            assert bucket.blob("obj").download_as_bytes() == b"version one"
            assert [b.name for b in client.list_blobs(bucket.name)] == ["obj"]
            assert list((data / "tmp").iterdir()) == []
            assert len(list((data / "buckets" / bucket.name / "data").iterdir())) == 1

        bucket.blob("obj").upload_from_string(BIG)  # space is back
        bucket.blob("big", chunk_size=256 * 1024).upload_from_string(BIG)
        assert bucket.blob("obj").download_as_bytes() == BIG
        assert bucket.blob("big").download_as_bytes() == BIG
    finally:
        server.stop()

    server = start_storage(tmp_path)  # and all of it after a restart
    try:
        bucket = storage_client(server.url).bucket(bucket.name)
        assert sorted(b.name for b in bucket.list_blobs()) == ["big", "obj"]
        assert bucket.blob("obj").download_as_bytes() == BIG
    finally:
        server.stop()
