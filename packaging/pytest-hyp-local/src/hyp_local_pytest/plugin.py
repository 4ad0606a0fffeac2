"""The fixtures (pytest plugin ``hyp_local``, registered through the ``pytest11`` entry point).

Session-scoped emulators, each started on first use and stopped at the end of the run:
``hyp_pubsub_emulator``, ``hyp_bigquery_emulator``, ``hyp_storage_emulator`` (subprocesses of ``hyp``, no
Docker), ``hyp_pubsub_container``, ``hyp_bigquery_container``, ``hyp_storage_container``
(:mod:`hyp_local_pytest.containers`; they skip without testcontainers or a Docker engine), and
``hyp_stack``, the whole stack through Docker Compose (:mod:`hyp_local_pytest.stack`). Per test:
Google's clients pointed at the emulators (``pubsub_publisher``, ``pubsub_subscriber``, ``bigquery_client``,
``storage_client``), a fresh topic (``pubsub_topic``) and subscription on it (``pubsub_subscription``).

Nothing here changes ``os.environ`` except the opt-in ``pubsub_emulator_env``, ``bigquery_emulator_env``,
``storage_emulator_env`` and ``hyp_emulator_env`` (all three), which a test asks for when its code reads
the ``*_EMULATOR_HOST`` variables (undone after the test).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from hyp_local_pytest.emulators import HttpEmulator, HypLocal, PubSubEmulator, find_hyp


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hyp-local", "hyp-local emulators")
    group.addoption("--hyp-local-hyp", default=None, help="the hyp command (path or command line); default: "
                    "$HYP_LOCAL_HYP, then `hyp` on PATH")  # fmt: skip
    parser.addini("hyp_local_project", "project id the emulators' clients use", default="test-project")
    parser.addini("hyp_local_image", "hyp-local's Pub/Sub image for hyp_pubsub_container",
                  default="hyp-local/pubsub:0.1.0")  # fmt: skip
    parser.addini("hyp_local_stack_timeout", "seconds hyp_stack waits for every service to be healthy",
                  default="600")  # fmt: skip
    parser.addini("hyp_local_stack_services", "services hyp_stack starts (with what they depend on), space- or "
                  "comma-separated; empty: the test services `hyp images compose` names; `all`: every one",
                  default="")  # fmt: skip
    parser.addini("hyp_local_app_image", "hyp-local's app image for hyp_bigquery_container, hyp_storage_container",
                  default="hyp-local/app:0.1.0")  # fmt: skip


@pytest.fixture(scope="session")
def hyp_local(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> HypLocal:
    """The ``hyp`` command with a work folder of this run: starts emulators (``.start_pubsub()``, ...)."""
    command = find_hyp(pytestconfig.getoption("hyp_local_hyp"))
    return HypLocal(command, tmp_path_factory.mktemp("hyp-local"), project=pytestconfig.getini("hyp_local_project"))


@pytest.fixture(scope="session")
def hyp_pubsub_emulator(hyp_local: HypLocal) -> Iterator[PubSubEmulator]:
    emulator = hyp_local.start_pubsub()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def hyp_bigquery_emulator(hyp_local: HypLocal) -> Iterator[HttpEmulator]:
    emulator = hyp_local.start_bigquery()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def hyp_storage_emulator(hyp_local: HypLocal) -> Iterator[HttpEmulator]:
    emulator = hyp_local.start_storage()
    yield emulator
    emulator.stop()


@pytest.fixture
def pubsub_publisher(hyp_pubsub_emulator: PubSubEmulator) -> Iterator[Any]:
    client = hyp_pubsub_emulator.publisher_client()
    yield client
    client.stop()


@pytest.fixture
def pubsub_subscriber(hyp_pubsub_emulator: PubSubEmulator) -> Iterator[Any]:
    client = hyp_pubsub_emulator.subscriber_client()
    yield client
    client.close()


@pytest.fixture
def pubsub_topic(hyp_pubsub_emulator: PubSubEmulator, pubsub_publisher: Any) -> str:
    """A topic of this test's own (its full path), created."""
    path = hyp_pubsub_emulator.topic_path(f"topic-{uuid.uuid4().hex[:10]}")
    pubsub_publisher.create_topic(name=path)
    return path


@pytest.fixture
def pubsub_subscription(hyp_pubsub_emulator: PubSubEmulator, pubsub_subscriber: Any, pubsub_topic: str) -> str:
    """A pull subscription on ``pubsub_topic`` (its full path), created."""
    path = hyp_pubsub_emulator.subscription_path(f"sub-{uuid.uuid4().hex[:10]}")
    pubsub_subscriber.create_subscription(name=path, topic=pubsub_topic)
    return path


@pytest.fixture
def bigquery_client(hyp_bigquery_emulator: HttpEmulator) -> Any:
    return hyp_bigquery_emulator.client()


@pytest.fixture
def storage_client(hyp_storage_emulator: HttpEmulator) -> Any:
    return hyp_storage_emulator.client()


def _setenv(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def pubsub_emulator_env(monkeypatch: pytest.MonkeyPatch, hyp_pubsub_emulator: PubSubEmulator) -> dict[str, str]:
    """Opt-in: PUBSUB_EMULATOR_HOST and PUBSUB_PROJECT_ID set for this test (restored afterwards)."""
    return _setenv(monkeypatch, hyp_pubsub_emulator.env())


@pytest.fixture
def bigquery_emulator_env(monkeypatch: pytest.MonkeyPatch, hyp_bigquery_emulator: HttpEmulator) -> dict[str, str]:
    """Opt-in: BIGQUERY_EMULATOR_HOST set for this test (restored afterwards)."""
    return _setenv(monkeypatch, hyp_bigquery_emulator.env())


@pytest.fixture
def storage_emulator_env(monkeypatch: pytest.MonkeyPatch, hyp_storage_emulator: HttpEmulator) -> dict[str, str]:
    """Opt-in: STORAGE_EMULATOR_HOST set for this test (restored afterwards)."""
    return _setenv(monkeypatch, hyp_storage_emulator.env())


@pytest.fixture
def hyp_emulator_env(
    monkeypatch: pytest.MonkeyPatch,
    hyp_local: HypLocal,
    pubsub_emulator_env: dict[str, str],
    bigquery_emulator_env: dict[str, str],
    storage_emulator_env: dict[str, str],
) -> dict[str, str]:
    """Opt-in: all three emulators' variables and GOOGLE_CLOUD_PROJECT set for this test (restored afterwards),
    for code that builds its clients from the environment. Starts all three; ask for one service's
    ``*_emulator_env`` to start only that one."""
    project = _setenv(monkeypatch, {"GOOGLE_CLOUD_PROJECT": hyp_local.project})
    return {**pubsub_emulator_env, **bigquery_emulator_env, **storage_emulator_env, **project}


def _container(kind: str, image_option: str, pytestconfig: pytest.Config) -> Iterator[Any]:
    from hyp_local_pytest import containers

    reason = containers.docker_missing()
    if reason:
        pytest.skip(reason)
    cls = getattr(containers, kind)
    image, project = pytestconfig.getini(image_option), pytestconfig.getini("hyp_local_project")
    with cls(image, project=project) as container:
        yield container


@pytest.fixture(scope="session")
def hyp_pubsub_container(pytestconfig: pytest.Config) -> Iterator[Any]:
    """hyp-local's Pub/Sub image under testcontainers, ready (:class:`HypPubSubContainer`); skips, saying why,
    where testcontainers is not installed or no Docker engine answers."""
    yield from _container("HypPubSubContainer", "hyp_local_image", pytestconfig)


@pytest.fixture(scope="session")
def hyp_bigquery_container(pytestconfig: pytest.Config) -> Iterator[Any]:
    """``hyp bigquery`` in hyp-local's app image, ready (:class:`HypBigQueryContainer`); skips as above."""
    yield from _container("HypBigQueryContainer", "hyp_local_app_image", pytestconfig)


@pytest.fixture(scope="session")
def hyp_storage_container(pytestconfig: pytest.Config) -> Iterator[Any]:
    """``hyp storage`` in hyp-local's app image, ready (:class:`HypStorageContainer`); skips as above."""
    yield from _container("HypStorageContainer", "hyp_local_app_image", pytestconfig)


@pytest.fixture(scope="session")
def hyp_stack(pytestconfig: pytest.Config, hyp_local: HypLocal) -> Iterator[Any]:
    """The stack (Pub/Sub with its topics, MLflow with a trained model, BigQuery, Cloud Storage, the detector,
    the Vertex-compatible endpoint, the processor; ini ``hyp_local_stack_services`` for others, ``all`` for the
    load generator, orchestrator and console too) through Docker Compose on free ports, ready
    (``up --wait``): a :class:`hyp_local_pytest.stack.HypStack` with Google's clients. Its images must be there
    (``hyp images build`` or ``hyp images load``); skips, saying why, without Docker Compose or an engine."""
    from hyp_local_pytest.stack import HypStack, compose_missing, parse_services

    reason = compose_missing()
    if reason:
        pytest.skip(reason)
    timeout = float(pytestconfig.getini("hyp_local_stack_timeout"))
    services = parse_services(str(pytestconfig.getini("hyp_local_stack_services")))
    with HypStack(hyp_local.command, hyp_local.workdir / "stack", timeout=timeout, services=services) as stack:
        yield stack
