"""pytest fixtures over :class:`services.testing.stack.HypStack`: ``pytest_plugins = ["services.testing.fixtures"]``.

``hyp_pubsub``: only the emulator (seconds to start). ``hyp_stack``: the core stack without the load
generator, the orchestrator and the console (tests send their own events). Both are session-scoped and
torn down with ``docker compose down --volumes``. They skip, saying why, where no Docker engine answers.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from services.testing.stack import HypStack

CORE = ["pubsub", "mlflow", "init", "detector", "endpoint", "processor"]


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
