"""Compose's give-up (issue 18): a long-running service that keeps failing is restarted RESTART_MAX times by
Docker, then left exited and reported by `docker compose ps` with its exit code, not restarted forever."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.processes import wait_for
from services.stack.compose_gen import RESTART, RESTART_MAX
from services.stack.images import ROOT

pytestmark = [
    pytest.mark.docker,
    pytest.mark.local_only("the generated compose file's restart policy (Docker's on-failure:N)"),
]

# the emulator's image, started with a flag its parser refuses: it exits 2 at every start
FAILING = """\
services:
  pubsub:
    ports: !override []
    command: ["pubsub", "--port", "not-a-port"]
"""


@pytest.fixture
def compose(tmp_path: Path) -> Iterator[list[str]]:
    override = tmp_path / "failing.yml"
    override.write_text(FAILING)
    project = f"hyp-giveup-{uuid.uuid4().hex[:8]}"
    argv = ["docker", "compose", "-p", project, "-f", str(ROOT / "docker-compose.yml"), "-f", str(override)]
    try:
        yield argv
    finally:
        subprocess.run([*argv, "down", "--volumes", "--remove-orphans"], capture_output=True, timeout=180)


def test_a_service_that_keeps_failing_is_restarted_five_times_then_reported_exited(compose):
    up = subprocess.run([*compose, "up", "--detach", "pubsub"], capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stderr[-3000:]
    cid = subprocess.run([*compose, "ps", "--all", "-q", "pubsub"], capture_output=True, text=True, timeout=60)
    container = cid.stdout.strip()
    assert container, cid.stderr

    def given_up() -> dict | None:
        out = subprocess.run(
            ["docker", "inspect", "--format", "{{json .State}}|{{.RestartCount}}|{{json .HostConfig.RestartPolicy}}",
             container], capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()  # fmt: skip
        state, count, policy = out.split("|")
        info = {**json.loads(state), "RestartCount": int(count), "Policy": json.loads(policy)}
        return info if info["Status"] == "exited" and info["RestartCount"] >= RESTART_MAX else None

    # Docker's backoff before the Nth restart is 100 ms * 2**(N-1): 3.1 s in all for five, plus each start
    info = wait_for(given_up, 120, f"pubsub given up after {RESTART_MAX} restarts", interval=0.5)
    assert info["Policy"] == {"Name": "on-failure", "MaximumRetryCount": RESTART_MAX}, RESTART
    assert info["RestartCount"] == RESTART_MAX and info["ExitCode"] == 2, info
    # it stays down: reported by `docker compose ps` as exited with its code, not restarting
    ps = subprocess.run([*compose, "ps", "--all", "--format", "json", "pubsub"], capture_output=True, text=True)
    rows = [row for line in ps.stdout.splitlines() if line.strip() for row in _rows(json.loads(line))]
    assert [(r["State"], r["ExitCode"]) for r in rows] == [("exited", 2)], ps.stdout


def _rows(parsed: list | dict) -> list[dict]:
    """`docker compose ps --format json`: one object per line (Compose >= 2.21) or one array (before)."""
    return parsed if isinstance(parsed, list) else [parsed]
