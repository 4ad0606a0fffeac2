"""pytest fixtures over :class:`services.testing.stack.HypStack`: ``pytest_plugins = ["services.testing.fixtures"]``.

``hyp_pubsub``: only the emulator (seconds to start). ``hyp_gcp``: only `hyp bigquery` and `hyp storage`.
``hyp_stack``: the core stack without the load generator, the orchestrator and the console (tests send their
own events), BigQuery and Cloud Storage included. These are session-scoped and torn down with
``docker compose down --volumes``; they skip, saying why, where no Docker engine answers.
``hyp_bigquery_client`` / ``hyp_storage_client``: Google's clients (anonymous credentials) pointed at the
``hyp_gcp`` stack's services, ready to use.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from services.testing.stack import HypStack

CORE = ["pubsub", "mlflow", "init", "detector", "endpoint", "processor", "bigquery", "storage"]
GCP = ["bigquery", "storage"]


def docker_missing() -> str | None:
    """Why Docker cannot be used here, or None."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if info.returncode != 0:
        return "the Docker engine does not answer (`docker info` failed)"
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        return "no docker compose v2 plugin"
    return None


def _stack(services: list[str]) -> Iterator[HypStack]:
    reason = docker_missing()
    if reason:
        pytest.skip(reason)
    with HypStack(services) as stack:
        yield stack


@pytest.fixture(scope="session")
def hyp_pubsub() -> Iterator[HypStack]:
    yield from _stack(["pubsub"])


@pytest.fixture(scope="session")
def hyp_stack() -> Iterator[HypStack]:
    yield from _stack(CORE)


@pytest.fixture(scope="session")
def hyp_gcp() -> Iterator[HypStack]:
    yield from _stack(GCP)


@pytest.fixture(scope="session")
def hyp_bigquery_client(hyp_gcp: HypStack) -> Any:  # google.cloud.bigquery.Client
    return hyp_gcp.bigquery_client()


@pytest.fixture(scope="session")
def hyp_storage_client(hyp_gcp: HypStack) -> Any:  # google.cloud.storage.Client
    return hyp_gcp.storage_client()
