"""Objects through google-cloud-storage: uploads (multipart, resumable, media), downloads with ranges,
listing, metadata, generations and preconditions, checksums, names, copy/rewrite/compose."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from typing import Any

import google_crc32c
import httpx
import pytest
from google.api_core import exceptions

from services.testing.hyp import HypProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/json_api/v1/objects"),
]


def crc32c_b64(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def test_multipart_upload_and_download(bucket: Any) -> None:
    blob = bucket.blob("folder/a file+ü.txt")  # '/', space, '+' and non-ASCII travel percent-encoded
    blob.upload_from_string(b"hello world", content_type="text/plain")
    assert blob.size == 11 and blob.content_type == "text/plain"
    assert blob.md5_hash == base64.b64encode(hashlib.md5(b"hello world").digest()).decode()
    assert blob.crc32c == crc32c_b64(b"hello world")
    again = bucket.get_blob("folder/a file+ü.txt")
    assert again.generation == blob.generation and again.metageneration == 1
    assert again.download_as_bytes() == b"hello world"


@pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/performing-resumable-uploads")
def test_resumable_upload_in_chunks(bucket: Any) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    blob = bucket.blob("big.bin", chunk_size=1024 * 1024)  # four PUTs: 308, 308, 308, 200
    blob.upload_from_file(io.BytesIO(data), size=len(data), content_type="application/x-test")
    got = bucket.get_blob("big.bin")
    assert got.size == len(data) and got.crc32c == crc32c_b64(data) and got.content_type == "application/x-test"
    assert got.download_as_bytes() == data


def test_large_file_goes_resumable_and_back(bucket: Any, tmp_path: Any) -> None:
    data = os.urandom(9 * 1024 * 1024)  # above the client's 8 MiB multipart limit: a resumable upload
    src, dst = tmp_path / "src.bin", tmp_path / "dst.bin"
    src.write_bytes(data)
    bucket.blob("file.bin").upload_from_filename(str(src))
    bucket.blob("file.bin").download_to_filename(str(dst))
    assert dst.read_bytes() == data


def test_media_upload(storage_server: HypProcess, bucket: Any) -> None:
    response = httpx.post(
        f"{storage_server.url}/upload/storage/v1/b/{bucket.name}/o",
        params={"uploadType": "media", "name": "raw.txt"},
        content=b"raw bytes",
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200 and response.json()["size"] == "9"
    assert bucket.get_blob("raw.txt").content_type == "text/csv"


@pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/json_api/v1/objects/get")
def test_ranged_downloads(storage_server: HypProcess, bucket: Any) -> None:
    data = bytes(range(256)) * 4
    bucket.blob("r").upload_from_string(data)
    assert bucket.blob("r").download_as_bytes(start=10, end=19) == data[10:20]
    assert bucket.blob("r").download_as_bytes(start=1000) == data[1000:]
    url = f"{storage_server.url}/download/storage/v1/b/{bucket.name}/o/r?alt=media"
    tail = httpx.get(url, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == data[-5:]
    assert tail.headers["content-range"] == f"bytes {len(data) - 5}-{len(data) - 1}/{len(data)}"
    assert httpx.get(url, headers={"Range": "bytes=5000-"}).status_code == 416


@pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/json_api/v1/objects/list")
def test_list_with_prefix_delimiter_and_pages(client: Any, bucket: Any) -> None:
    names = ["a.txt", "dir/1", "dir/2", "dir/sub/3", "other/x", "z"]
    for n in names:
        bucket.blob(n).upload_from_string(n.encode())
    assert [b.name for b in client.list_blobs(bucket, prefix="dir/")] == ["dir/1", "dir/2", "dir/sub/3"]
    top = client.list_blobs(bucket, delimiter="/")
    assert [b.name for b in top] == ["a.txt", "z"] and top.prefixes == {"dir/", "other/"}
    inner = client.list_blobs(bucket, prefix="dir/", delimiter="/")
    assert [b.name for b in inner] == ["dir/1", "dir/2"] and inner.prefixes == {"dir/sub/"}
    pages = [[b.name for b in page] for page in client.list_blobs(bucket, page_size=4).pages]
    assert pages == [names[:4], names[4:]]
    paged = client.list_blobs(bucket, delimiter="/", page_size=1)
    assert [b.name for b in paged] == ["a.txt", "z"] and paged.prefixes == {"dir/", "other/"}
    assert [b.name for b in client.list_blobs(bucket, start_offset="dir/2", end_offset="z")] == [
        "dir/2",
        "dir/sub/3",
        "other/x",
    ]


@pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/request-preconditions")
def test_generations_and_preconditions(bucket: Any) -> None:
    blob = bucket.blob("g")
    blob.upload_from_string(b"v1", if_generation_match=0)  # create only
    first = blob.generation
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("g").upload_from_string(b"again", if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("g").upload_from_string(b"v2", if_generation_match=first + 1)
    second = bucket.blob("g")
    second.upload_from_string(b"v2", if_generation_match=first)
    assert second.generation > first
    assert bucket.blob("g").download_as_bytes() == b"v2"
    with pytest.raises(exceptions.NotFound):
        bucket.blob("g", generation=first).download_as_bytes()  # versioning off: the old generation is gone
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("g").delete(if_generation_match=first)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.get_blob("g", if_metageneration_match=2)
    # a ...NotMatch that does not hold: 304, the caller already has this generation
    with pytest.raises(exceptions.NotModified):
        bucket.get_blob("g", if_generation_not_match=second.generation)
    with pytest.raises(exceptions.NotModified):
        bucket.blob("g").download_as_bytes(if_generation_not_match=second.generation)
    assert bucket.blob("g").download_as_bytes(if_generation_not_match=first) == b"v2"
    bucket.blob("g").delete(if_generation_match=second.generation)
    with pytest.raises(exceptions.NotFound):
        bucket.blob("g").delete()


def test_metadata_patch(bucket: Any) -> None:
    blob = bucket.blob("m")
    blob.metadata = {"owner": "me", "stage": "raw"}
    blob.upload_from_string(b"x", content_type="application/json")
    got = bucket.get_blob("m")
    assert got.metadata == {"owner": "me", "stage": "raw"}
    got.metadata = {"stage": "clean", "owner": None}
    got.cache_control = "no-cache"
    got.patch()
    again = bucket.get_blob("m")
    assert again.metadata == {"stage": "clean"} and again.cache_control == "no-cache"
    assert again.metageneration == 2 and again.generation == got.generation


@pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/hashes-etags")
def test_checksum_mismatch_is_refused(storage_server: HypProcess, bucket: Any) -> None:
    blob = bucket.blob("sum")
    blob.crc32c = crc32c_b64(b"something else")
    with pytest.raises(exceptions.BadRequest, match="CRC32C"):
        blob.upload_from_string(b"payload", checksum=None)
    blob = bucket.blob("sum")
    blob.md5_hash = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(exceptions.BadRequest, match="MD5"):
        blob.upload_from_string(b"payload", checksum=None)
    assert bucket.get_blob("sum") is None  # nothing was committed


@pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/objects#naming")
@pytest.mark.parametrize("name", ["line\nfeed", ".", "..", ".well-known/acme-challenge/x", "n" * 1025])
def test_bad_object_names_are_refused(bucket: Any, name: str) -> None:
    with pytest.raises(exceptions.BadRequest, match="Invalid object name"):
        bucket.blob(name).upload_from_string(b"x")


def test_missing_object_and_bucket(client: Any, bucket: Any) -> None:
    with pytest.raises(exceptions.NotFound, match="No such object"):
        bucket.blob("nope").download_as_bytes()
    assert bucket.get_blob("nope") is None
    with pytest.raises(exceptions.NotFound):
        client.bucket("no-such-bucket-1").blob("x").upload_from_string(b"x")


@pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/json_api/v1/objects/rewrite")
def test_copy_rewrite_compose(client: Any, bucket: Any) -> None:
    other = client.create_bucket(f"{bucket.name}-dst")
    src = bucket.blob("src")
    src.metadata = {"k": "v"}
    src.upload_from_string(b"abc", content_type="text/plain")
    copied = bucket.copy_blob(src, other, "copy")
    assert copied.download_as_bytes() == b"abc" and copied.metadata == {"k": "v"}
    target = other.blob("rewritten")
    token, done, total = target.rewrite(src)
    assert token is None and done == total == 3 and target.download_as_bytes() == b"abc"
    bucket.blob("p2").upload_from_string(b"def")
    composed = bucket.blob("joined")
    composed.content_type = "text/plain"
    composed.compose([bucket.blob("src"), bucket.blob("p2")])
    got = bucket.get_blob("joined")
    assert got.download_as_bytes() == b"abcdef" and got.component_count == 2 and got.crc32c == crc32c_b64(b"abcdef")
    with pytest.raises(exceptions.NotFound):
        bucket.blob("joined2").compose([bucket.blob("src"), bucket.blob("missing")])


@pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/request-preconditions")
def test_concurrent_create_only_uploads_have_one_winner(client: Any, bucket: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def create(i: int) -> str:
        try:
            client.bucket(bucket.name).blob("once").upload_from_string(f"writer {i}".encode(), if_generation_match=0)
            return "won"
        except exceptions.PreconditionFailed:
            return "lost"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(create, range(8)))
    assert outcomes.count("won") == 1 and outcomes.count("lost") == 7
    assert bucket.blob("once").download_as_bytes() == f"writer {outcomes.index('won')}".encode()
