"""`hyp up` with real processes: the emulator alone (the rest of the stack is exercised by the benchmark
and the docker tier). Uses the stack's fixed ports, so it skips when something else holds them."""

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
def free_ports():
    busy = [port for port in PORTS if port_in_use(port)]
    if busy:
        pytest.skip(f"ports {busy} are in use on 127.0.0.1 (another emulator or stack is running)")


def test_detach_status_logs_down(free_ports, tmp_path):
    home = str(tmp_path / "hyp")
    started = hyp("up", "--detach", "--services", "pubsub", "--home", home)
    try:
        assert started.returncode == 0, started.stderr
        assert "PUBSUB_EMULATOR_HOST=127.0.0.1:8085" in started.stdout
        state = hyp("status", "--home", home, "--json")
        assert state.returncode == 0, state.stderr
        assert '"service": "pubsub"' in state.stdout and '"health": "healthy"' in state.stdout
        again = hyp("up", "--detach", "--services", "pubsub", "--home", home)
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
    assert probe(d.service("pubsub").health.url()) is not None  # nothing answers any more


def test_foreground_stops_everything_on_sigterm(free_ports, tmp_path):
    home = tmp_path / "hyp"
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--services", "pubsub", "--home", str(home)],
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
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not p.pid_alive(pid)
    assert not (home / "run" / "pubsub.pid").exists()


def test_bounded_run_exits_zero_after_duration(free_ports, tmp_path):
    result = hyp("up", "--services", "pubsub", "--home", str(tmp_path / "hyp"), "--duration", "2", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"published"' in result.stdout
    assert not any(port_in_use(port) for port in PORTS)
