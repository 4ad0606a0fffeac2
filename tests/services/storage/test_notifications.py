"""Pub/Sub notifications for Cloud Storage: configurations made with Google's storage client, messages
read with Google's Pub/Sub client from a real `hyp pubsub`, both services real processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions

from services.testing.hyp import HypProcess
from services.testing.pubsub import EmulatorProcess, pull, topic_and_subscription
from services.testing.storage import storage_client
from tests.services.storage.conftest import unique_bucket

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/storage/docs/pubsub-notifications"),
]


@pytest.fixture(scope="module")
def emulator(pubsub_emulator: EmulatorProcess) -> EmulatorProcess:
    """The session's emulator (tests/fixtures/pubsub.py): each test's topics and buckets have unique names."""
    return pubsub_emulator


def start(tmp: Path, emulator: EmulatorProcess, port: int | None = None) -> HypProcess:
    env = {**emulator.env(), "HYP_STORAGE_DATA_DIR": str(tmp / "data")}
    return HypProcess("storage", log_path=tmp / "storage.log", env=env, port=port).start(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorProcess) -> Iterator[HypProcess]:
    server = start(tmp_path_factory.mktemp("storage"), emulator)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(server: HypProcess) -> Any:
    return storage_client(server.url, project=server.env["HYP_PROJECT"] if server.env else "hyp-local")


def notify(bucket: Any, emulator: EmulatorProcess, **kwargs: Any) -> tuple[Any, str]:
    topic, sub = topic_and_subscription(emulator)
    config = bucket.notification(topic_name=topic.rsplit("/", 1)[-1], topic_project=emulator.project, **kwargs)
    config.create()
    return config, sub


def messages(emulator: EmulatorProcess, sub: str, want: int) -> list[Any]:
    got = [m.message for m in pull(emulator.subscriber(), sub, want, timeout=30)]
    assert len(got) == want, [dict(m.attributes) for m in got]
    return got


def test_finalize_overwrite_metadata_and_delete_each_publish_with_the_documented_attributes(
    client: Any, emulator: EmulatorProcess
) -> None:
    bucket = client.create_bucket(unique_bucket())
    config, sub = notify(bucket, emulator, custom_attributes={"team": "ml"}, payload_format="JSON_API_V1")
    blob = bucket.blob("models/a.joblib")
    blob.upload_from_string(b"first")
    first = blob.generation
    (created,) = messages(emulator, sub, 1)
    attrs = dict(created.attributes)
    assert attrs["eventType"] == "OBJECT_FINALIZE" and attrs["payloadFormat"] == "JSON_API_V1"
    assert attrs["bucketId"] == bucket.name and attrs["objectId"] == "models/a.joblib"
    assert attrs["objectGeneration"] == str(first) and attrs["team"] == "ml" and attrs["eventTime"]
    assert (
        attrs["notificationConfig"] == f"projects/_/buckets/{bucket.name}/notificationConfigs/{config.notification_id}"
    )
    resource = json.loads(created.data)
    assert (resource["kind"], resource["name"], resource["size"]) == ("storage#object", "models/a.joblib", "5")

    blob.upload_from_string(b"second")  # an overwrite: the old generation's delete, the new one's finalize
    replaced = {m.attributes["eventType"]: dict(m.attributes) for m in messages(emulator, sub, 2)}
    assert replaced["OBJECT_DELETE"]["objectGeneration"] == str(first)
    assert replaced["OBJECT_DELETE"]["overwrittenByGeneration"] == str(blob.generation)
    assert replaced["OBJECT_FINALIZE"]["overwroteGeneration"] == str(first)

    blob.metadata = {"stage": "candidate"}
    blob.patch()
    (updated,) = messages(emulator, sub, 1)
    assert updated.attributes["eventType"] == "OBJECT_METADATA_UPDATE"
    assert json.loads(updated.data)["metadata"] == {"stage": "candidate"}

    blob.delete()
    (deleted,) = messages(emulator, sub, 1)
    assert (deleted.attributes["eventType"], deleted.attributes["objectGeneration"]) == (
        "OBJECT_DELETE",
        str(blob.generation),
    )


def test_event_types_prefix_and_no_payload_filter_what_is_sent(client: Any, emulator: EmulatorProcess) -> None:
    bucket = client.create_bucket(unique_bucket())
    _, sub = notify(bucket, emulator, event_types=["OBJECT_DELETE"], blob_name_prefix="exports/")  # client: NONE
    bucket.blob("other/x").upload_from_string(b"1")
    bucket.blob("other/x").delete()  # outside the prefix
    bucket.blob("exports/y").upload_from_string(b"2")  # a finalize: not asked for
    bucket.blob("exports/y").delete()
    (only,) = messages(emulator, sub, 1)
    assert (only.attributes["eventType"], only.attributes["objectId"], only.data) == ("OBJECT_DELETE", "exports/y", b"")
    assert pull(emulator.subscriber(), sub, 1, timeout=0) == []


def test_configurations_are_listed_fetched_deleted_and_survive_a_restart(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    server = start(tmp_path, emulator)
    try:
        client = storage_client(server.url, project=emulator.project)
        bucket = client.create_bucket(unique_bucket())
        first, _ = notify(bucket, emulator)
        second, sub = notify(bucket, emulator, event_types=["OBJECT_FINALIZE"])
        assert sorted(n.notification_id for n in bucket.list_notifications()) == ["1", "2"]
        server.stop()
        server.start(timeout=60)
        assert bucket.get_notification("2").event_types == ["OBJECT_FINALIZE"]
        topics = {n.notification_id: n.topic_name for n in bucket.list_notifications()}  # get() leaves topic_name unset
        assert topics == {"1": first.topic_name, "2": second.topic_name}
        bucket.blob("after-restart").upload_from_string(b"x")
        assert messages(emulator, sub, 1)[0].attributes["objectId"] == "after-restart"
        first.delete()
        assert not first.exists()
        assert [n.notification_id for n in bucket.list_notifications()] == ["2"]
        with pytest.raises(exceptions.NotFound):
            bucket.get_notification("1")
    finally:
        server.stop()


@pytest.mark.local_only("the message wording for a missing topic is ours; Cloud Storage also refuses it with 400")
def test_a_topic_that_does_not_exist_or_a_bad_payload_format_is_refused(client: Any, emulator: EmulatorProcess) -> None:
    bucket = client.create_bucket(unique_bucket())
    with pytest.raises(exceptions.BadRequest, match="does not exist"):
        bucket.notification(topic_name="missing", topic_project=emulator.project).create()
    topic, _ = topic_and_subscription(emulator)
    with pytest.raises(exceptions.BadRequest, match="payload_format"):
        bucket.notification(
            topic_name=topic.rsplit("/", 1)[-1], topic_project=emulator.project, payload_format="XML"
        ).create()
    assert list(bucket.list_notifications()) == []
