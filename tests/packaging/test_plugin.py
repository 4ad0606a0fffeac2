"""pytest-hyp-local's own parts, from its source folder: finding `hyp`, starting emulators through it (here
this checkout's `hyp`), the container class where testcontainers or Docker is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.testing.pubsub import REPO

pytestmark = pytest.mark.local_only("packaging: hyp-local's pytest plugin for other projects")


def test_hyp_comes_from_the_option_then_the_variable_then_path(tmp_path: Path) -> None:
    from hyp_local_pytest.emulators import HypNotFound, find_hyp

    assert find_hyp("/opt/hyp/bin/hyp", {"HYP_LOCAL_HYP": "/x/hyp"}) == ["/opt/hyp/bin/hyp"]
    assert find_hyp(None, {"HYP_LOCAL_HYP": "uv tool run --from hyp-local hyp"}) == [
        "uv", "tool", "run", "--from", "hyp-local", "hyp"
    ]  # fmt: skip
    tool = tmp_path / "hyp"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert find_hyp(None, {"PATH": str(tmp_path)}) == [str(tool)]
    with pytest.raises(HypNotFound, match="HYP_LOCAL_HYP"):
        find_hyp(None, {"PATH": str(tmp_path / "empty")})


def test_the_container_module_imports_without_testcontainers(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "testcontainers.core.container", None)  # import of it fails
    monkeypatch.delitem(sys.modules, "hyp_local_pytest.containers", raising=False)
    containers = importlib.import_module("hyp_local_pytest.containers")
    try:
        assert "testcontainers is not installed" in (containers.docker_missing() or "")
        for cls in (containers.HypPubSubContainer, containers.HypBigQueryContainer, containers.HypStorageContainer):
            with pytest.raises(ImportError, match="pytest-hyp-local\\[containers\\]"):
                cls()
    finally:
        sys.modules.pop("hyp_local_pytest.containers", None)


@pytest.mark.integration
def test_emulators_through_a_hyp_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HypLocal with this checkout's hyp (`python -m services.cli`): each emulator answers Google's client."""
    import sys

    from hyp_local_pytest.emulators import HypLocal

    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the checkout's hyp, run from the emulators' work folder
    hyp = HypLocal([sys.executable, "-m", "services.cli"], tmp_path, project="plugin-test")
    pubsub = hyp.start_pubsub()
    storage = hyp.start_storage()
    try:
        publisher = pubsub.publisher_client()
        assert list(publisher.list_topics(project="projects/plugin-test")) == []  # --topology none
        publisher.create_topic(name=pubsub.topic_path("orders"))
        subscriber = pubsub.subscriber_client()
        subscriber.create_subscription(name=pubsub.subscription_path("orders"), topic=pubsub.topic_path("orders"))
        publisher.publish(pubsub.topic_path("orders"), b"one").result(timeout=10)
        response = subscriber.pull(subscription=pubsub.subscription_path("orders"), max_messages=1, timeout=10)
        assert [m.message.data for m in response.received_messages] == [b"one"]
        subscriber.close()

        gcs = storage.client()
        gcs.create_bucket("plugin-bucket").blob("a.txt").upload_from_string(b"hello")
        assert gcs.bucket("plugin-bucket").blob("a.txt").download_as_bytes() == b"hello"
    finally:
        assert pubsub.stop() == 0
        assert storage.stop() is not None  # ended (uvicorn's server may exit by the signal itself)
