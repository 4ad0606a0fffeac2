"""Buckets through google-cloud-storage: create, get, list (paged), labels, delete, and the errors GCP gives."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from google.api_core import exceptions

from services.testing.hyp import HypProcess
from tests.services.storage.conftest import unique_bucket

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/json_api/v1/buckets"),
]


def test_create_get_list_delete(client: Any) -> None:
    name = unique_bucket()
    created = client.create_bucket(name)
    assert created.name == name and created.location == "US" and created.storage_class == "STANDARD"
    assert client.get_bucket(name).time_created is not None
    assert name in [b.name for b in client.list_buckets(prefix=name[:2])]
    client.get_bucket(name).delete()
    with pytest.raises(exceptions.NotFound):
        client.get_bucket(name)


def test_labels_set_at_create_and_patched(client: Any) -> None:
    bucket = client.bucket(unique_bucket())
    bucket.labels = {"team": "data", "env": "dev"}
    client.create_bucket(bucket, location="europe-west1")
    got = client.get_bucket(bucket.name)
    assert got.labels == {"team": "data", "env": "dev"} and got.location == "EUROPE-WEST1"
    got.labels = {"team": "ml"}  # the client sends env: null to remove it
    got.patch()
    again = client.get_bucket(bucket.name)
    assert again.labels == {"team": "ml"} and again.metageneration == 2


def test_update_replaces_the_labels(client: Any) -> None:
    bucket = client.bucket(unique_bucket())
    bucket.labels = {"a": "1", "b": "2"}
    client.create_bucket(bucket)
    got = client.get_bucket(bucket.name)
    got.labels = {"c": "3"}
    got.update()  # PUT: the whole resource
    assert client.get_bucket(bucket.name).labels == {"c": "3"}


def test_list_pages(client: Any) -> None:
    prefix = unique_bucket("pg")
    names = sorted(client.create_bucket(f"{prefix}-{i}").name for i in range(5))
    pages = client.list_buckets(prefix=prefix, page_size=2).pages
    seen = [[b.name for b in page] for page in pages]
    assert [len(p) for p in seen] == [2, 2, 1]
    assert [n for page in seen for n in page] == names


def test_existing_bucket_is_a_conflict(client: Any) -> None:
    name = client.create_bucket(unique_bucket()).name
    with pytest.raises(exceptions.Conflict):
        client.create_bucket(name)


def test_non_empty_bucket_is_not_deleted(client: Any, bucket: Any) -> None:
    bucket.blob("x").upload_from_string(b"1")
    with pytest.raises(exceptions.Conflict, match="not empty"):
        bucket.delete()
    bucket.blob("x").delete()
    bucket.delete()


@pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/buckets#naming")
@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "x" * 64,
        "Upper-case",
        "-starts-with-dash",
        "ends-with-dot.",
        "192.168.5.4",
        "goog-bucket",
        "my-google-bucket",
        "has space",
        "a" * 64 + ".com",
    ],
)
def test_bad_bucket_names_are_refused(storage_server: HypProcess, name: str) -> None:
    # sent as raw JSON API requests: the client refuses some of these names itself before sending
    response = httpx.post(f"{storage_server.url}/storage/v1/b", params={"project": "hyp-local"}, json={"name": name})
    assert response.status_code == 400
    assert response.json()["error"]["errors"][0]["reason"] == "invalid"
    assert "Invalid bucket name" in response.json()["error"]["message"]


def test_bad_bucket_name_raises_bad_request_in_the_client(client: Any) -> None:
    with pytest.raises(exceptions.BadRequest, match="Invalid bucket name"):
        client.create_bucket("Upper-Case")


@pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/buckets#naming")
@pytest.mark.parametrize("name", ["abc", "my_bucket-1", "a.b.c", "x" * 63, ("y" * 60 + ".") * 3 + "z"])
def test_good_bucket_names_are_accepted(client: Any, name: str) -> None:
    client.create_bucket(name)
    client.get_bucket(name).delete()


@pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/json_api/v1/status-codes")
def test_error_shape(storage_server: HypProcess) -> None:
    response = httpx.get(f"{storage_server.url}/storage/v1/b/no-such-bucket-here")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == 404 and error["errors"][0]["reason"] == "notFound" and error["message"]
