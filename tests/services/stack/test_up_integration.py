"""`hyp up` with real processes: the emulator alone (the rest of the stack is exercised by the benchmark
and the docker tier), on ports moved by a free offset (`--port-offset`), beside any stack on the defaults."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.processes import wait_for
from services.stack import definition as d
from services.stack import processes as p
from services.stack.healthcheck import probe
from services.stack.up import port_in_use
from services.testing.hyp import run_hyp as hyp

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
PORTS = d.service("pubsub").ports


@pytest.fixture
def offset() -> int:
    """A port offset under which the emulator's ports are free now."""
    for candidate in range(23000, 40000, 991):
        if not any(port_in_use(port + candidate) for port in PORTS):
            return candidate
    raise RuntimeError("no free port offset")


def test_detach_status_logs_down(offset, tmp_path):
    home = str(tmp_path / "hyp")
    started = hyp("up", "--detach", "--services", "pubsub", "--home", home, "--port-offset", str(offset))
    try:
        assert started.returncode == 0, started.stderr
        assert f"PUBSUB_EMULATOR_HOST=127.0.0.1:{d.PUBSUB_PORT + offset}" in started.stdout
        state = hyp("status", "--home", home, "--json")  # the offset comes from the running stack
        assert state.returncode == 0, state.stderr
        assert '"service": "pubsub"' in state.stdout and '"health": "healthy"' in state.stdout
        again = hyp("up", "--detach", "--services", "pubsub", "--home", home, "--port-offset", str(offset))
        assert again.returncode == 1 and "already running" in again.stderr
        log = hyp("logs", "pubsub", "--home", home)
        assert log.returncode == 0 and "hyp up: starting pubsub" in log.stdout  # raw output: <run>/pubsub.out
        assert '"msg": "topic created"' in log.stdout  # the structured log: <run>/pubsub.log (HYP_LOG_FILE)
        assert log.stdout.index("hyp up: starting pubsub") < log.stdout.index('"msg": "topic created"')
        pid, _ = p.recorded(tmp_path / "hyp" / "run")["pubsub"]
    finally:
        stopped = hyp("down", "--home", home)
    assert stopped.returncode == 0 and "pubsub: stopped" in stopped.stdout
    assert not p.pid_alive(pid)
    assert probe(d.service("pubsub").health.url(port_offset=offset)) is not None  # nothing answers any more


def moved(offset: int) -> list[str]:
    return ["--port-offset", str(offset)]


def test_foreground_stops_everything_on_sigterm(offset, tmp_path):
    home = tmp_path / "hyp"
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--services", "pubsub", "--home", str(home), *moved(offset)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        stdout = proc.stdout
        assert stdout is not None

        def summary_printed() -> bool:
            line = stdout.readline()  # blocks until a line; the process's own health timeout bounds it
            if not line and proc.poll() is not None:
                raise RuntimeError(f"hyp up exited with {proc.returncode} before its live summary")
            return "live summary" in line

        wait_for(summary_printed, 90, "hyp up's live summary", interval=0)
        pid, _ = p.recorded(home / "run")["pubsub"]
        assert p.pid_alive(pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0  # bound for a loaded machine (the stop: SIGTERM, SIGKILL after 15 s)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not p.pid_alive(pid)
    assert not (home / "run" / "pubsub.pid").exists()


def test_bounded_run_exits_zero_after_duration(offset, tmp_path):
    home = str(tmp_path / "hyp")
    result = hyp(
        "up", "--services", "pubsub", "--home", home, "--duration", "2", "--json", "--port-offset", str(offset)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"published"' in result.stdout and '"services": {"pubsub": {"restarts": 0' in result.stdout
    assert not any(port_in_use(port + offset) for port in PORTS)
