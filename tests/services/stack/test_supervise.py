"""`hyp up`'s supervision: a service that exits is started again with backoff and counted; a crash loop is left down.

`hyp up` binds the stack's fixed ports, which a benchmark stack may hold on this machine, so these tests run
the same code (``start_stack``, the launcher, the supervisor, the detached keeper) on stand-in services: real
`hyp storage` servers on free ports, and a `hyp storage` given a bad port, which exits at once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services.common.processes import free_port, wait_for
from services.stack import definition as d
from services.stack import processes as p
from services.stack import status, up
from services.stack import supervise as sup
from services.stack.healthcheck import probe
from services.stack.settings import StackSettings
from services.testing.hyp import REPO, run_hyp
from services.testing.local_stack import free_offset

pytestmark = pytest.mark.local_only("`hyp up` supervision: compose's restart policy for local processes")


def storage_on(port: int) -> d.Service:
    """The stack's storage service moved to ``port`` (the same command, health check and placeholders)."""
    s = d.service("storage")
    command = ("storage", "--host", "{bind}", "--port", str(port), "--data-dir", "{data}/storage")
    return dataclasses.replace(s, command=command, ports=(port,), health=d.Health(port, "/health"))


def crashing() -> d.Service:
    """A service that exits with a one-line reason as soon as it starts (a port `hyp storage` refuses)."""
    return dataclasses.replace(d.service("storage"), command=("storage", "--port", "0"), health=None)


def settings(home: Path, **values: float) -> StackSettings:
    return StackSettings(home=home, health_timeout_s=60, stop_timeout_s=10, **values)


def test_exit_reasons_name_the_signal_or_status_and_the_last_line(tmp_path):
    assert sup.exit_reason(-9) == "killed by SIGKILL"
    assert sup.exit_reason(3) == "exit status 3"
    (tmp_path / "svc.out").write_text(f"{p.START_MARK}svc at 2026-01-01T00:00:00.000Z: hyp svc\nboom: no disk\n")
    assert sup.exit_reason(1, tmp_path / "svc.log") == "exit status 1: boom: no disk"


def test_backoff_doubles_and_a_crash_loop_is_left_down(tmp_path):
    """Real processes that exit at once; the clock is the test's, so the backoff is checked exactly."""
    now = [0.0]
    run_dir = tmp_path / "run"
    launch = up.launcher(tmp_path, up.tunables(None))
    s = crashing()
    running = [launch(s)]
    policy = sup.Policy(backoff_s=1.0, max_backoff_s=30.0, max_failures=3, window_s=120.0)
    keeper = sup.Supervisor(running, launch, run_dir, policy, clock=lambda: now[0])
    delays = []
    for _ in range(3):
        wait_for(lambda: running[0].returncode() is not None, 30, "the service to exit")
        notes = keeper.poll()
        record = keeper.records["storage"]
        if record.state == "failed":
            break
        delays.append(record.restart_at - now[0])
        assert "stopped unexpectedly (exit status 2" in notes[0] and "restarting in" in notes[0]
        assert keeper.poll() == []  # not before the backoff
        now[0] = record.restart_at
        assert keeper.poll() == [f"storage: restarted (restart {record.restarts})"]
    assert delays == [1.0, 2.0]
    assert record.state == "failed" and record.restarts == 2
    assert "exited 3 times within 120 s" in notes[0] and "left down" in notes[0]
    assert "--port" in record.last_exit  # the service's own one-line reason
    assert keeper.failed() == ["storage"] and "DOWN storage" in keeper.suffix()
    assert json.loads((run_dir / sup.STATE_FILE).read_text())["storage"]["state"] == "failed"
    now[0] += 1000
    assert keeper.poll() == [] and running[0].returncode() is not None  # left down for good


def test_exits_spread_wider_than_the_window_are_never_given_up(tmp_path):
    now = [0.0]
    launch = up.launcher(tmp_path, up.tunables(None))
    running = [launch(crashing())]
    keeper = sup.Supervisor(running, launch, tmp_path / "run", sup.Policy(1.0, 30.0, 2, 60.0), clock=lambda: now[0])
    for restart in range(1, 4):
        wait_for(lambda: running[0].returncode() is not None, 30, "the service to exit")
        keeper.poll()
        assert keeper.records["storage"].restart_at == now[0] + 1.0  # the count started again: first backoff
        now[0] += 100  # longer than the window
        keeper.poll()
        assert keeper.records["storage"].restarts == restart
    wait_for(lambda: running[0].returncode() is not None, 30, "the service to exit")


def test_a_start_that_fails_counts_as_an_exit_and_supervision_goes_on(tmp_path):
    """The run dir replaced by a file: starting fails with OSError, which is reported and retried, not raised."""
    now = [0.0]
    launch = up.launcher(tmp_path, up.tunables(None))
    running = [launch(crashing())]
    keeper = sup.Supervisor(running, launch, tmp_path / "run", sup.Policy(1.0, 30.0, 5, 120.0), clock=lambda: now[0])
    wait_for(lambda: running[0].returncode() is not None, 30, "the service to exit")
    keeper.poll()
    shutil.rmtree(tmp_path / "run")
    (tmp_path / "run").write_text("not a folder")
    now[0] = keeper.records["storage"].restart_at
    notes = keeper.poll()
    record = keeper.records["storage"]
    assert len(notes) == 1 and "(could not start: " in notes[0] and "restarting in 2 s" in notes[0]
    assert (record.state, record.restarts, len(record.exits)) == ("restarting", 0, 2)


@pytest.mark.integration
def test_a_killed_service_comes_back_healthy_and_counted(tmp_path):
    port = free_port()
    plan = [storage_on(port)]
    conf = settings(tmp_path, restart_backoff_s=0.2)
    started = up.start_stack(plan, conf, up.tunables(None))
    run_dir = tmp_path / "run"
    try:
        keeper = sup.Supervisor(started, up.launcher(tmp_path, up.tunables(None)), run_dir, conf.restart_policy)
        first = started[0].pid
        os.kill(first, signal.SIGKILL)
        notes: list[str] = []

        def back() -> bool:
            notes.extend(keeper.poll())
            return started[0].pid != first and probe(f"http://127.0.0.1:{port}/health") is None

        wait_for(back, 60, "storage to be restarted and healthy", interval=0.2)
        assert notes[0].startswith("storage stopped unexpectedly (killed by SIGKILL)")
        assert notes[1] == "storage: restarted (restart 1)"
        assert "restarts storage 1" in keeper.suffix()
        assert p.recorded(run_dir)["storage"][0] == started[0].pid  # the pid file follows the new process
        row = next(r for r in status.rows(tmp_path) if r["service"] == "storage")
        assert (row["state"], row["restarts"], row["last_exit"]) == ("running", 1, "killed by SIGKILL")
    finally:
        up._stop_all(started, conf, run_dir)
    assert not (run_dir / sup.STATE_FILE).exists() and not p.recorded(run_dir)


KEEPER = """
import dataclasses, sys
from pathlib import Path
from services.stack import definition as d, detach, up
from services.stack.settings import StackSettings

home, port = Path(sys.argv[1]), int(sys.argv[2])
s = d.service("storage")
command = ("storage", "--host", "{bind}", "--port", str(port), "--data-dir", "{data}/storage")
plan = [dataclasses.replace(s, command=command, ports=(port,), health=d.Health(port, "/health"))]
conf = StackSettings(home=home, health_timeout_s=60, restart_backoff_s=0.2)
values = up.tunables(None)
raise SystemExit(detach.run(home / "run", lambda ready: up.keep(plan, conf, values, ready)))
"""


@pytest.mark.integration
def test_the_detached_keeper_restarts_a_killed_service_and_hyp_down_stops_both(tmp_path):
    """What `hyp up --detach` runs, on a stand-in plan: the command returns once healthy, the keeper stays."""
    home, port = tmp_path / "hyp", free_port()
    script = [sys.executable, "-c", textwrap.dedent(KEEPER), str(home), str(port)]
    done = subprocess.run(script, cwd=REPO, capture_output=True, text=True, timeout=120)
    run_dir = home / "run"
    try:
        assert done.returncode == 0, done.stderr
        assert "STORAGE_EMULATOR_HOST=http://127.0.0.1:" in done.stdout  # the URLs, through the keeper
        assert "detached:" in done.stdout and "storage" in done.stderr  # progress on stderr, as in the foreground
        keeper, service = p.recorded(run_dir)["up"], p.recorded(run_dir)["storage"]
        assert p.pid_alive(*keeper) and p.pid_alive(*service)
        os.kill(service[0], signal.SIGKILL)

        def restarted() -> bool:
            state = sup.read(run_dir).get("storage", {})
            return state.get("restarts") == 1 and probe(f"http://127.0.0.1:{port}/health") is None

        wait_for(restarted, 60, "the keeper to restart storage", interval=0.2)
        assert sup.read(run_dir)["storage"]["last_exit"] == "killed by SIGKILL"
        assert "storage stopped unexpectedly (killed by SIGKILL)" in (run_dir / "up.out").read_text()
        again = p.recorded(run_dir)["storage"]
        assert again[0] != service[0] and p.pid_alive(*again)
    finally:
        down = run_hyp("down", "--home", str(home), timeout=120)
    assert down.returncode == 0, down.stderr
    assert "up: stopped" in down.stdout and "storage: stopped" in down.stdout  # the keeper first
    assert down.stdout.index("up: stopped") < down.stdout.index("storage: stopped")
    assert not p.pid_alive(*keeper) and not p.pid_alive(*again)


@pytest.mark.integration
def test_hyp_up_restarts_a_killed_service_of_a_private_stack(tmp_path):
    """The whole command: `hyp up --detach --port-offset` (private home and ports), kill -9, status, down."""
    home, offset = str(tmp_path / "hyp"), free_offset(["bigquery", "storage"])
    env = {**os.environ, "HYP_UP_RESTART_BACKOFF": "0.2"}
    common = ["--home", home, "--port-offset", str(offset)]
    started = run_hyp("up", "--detach", "--services", "bigquery,storage", *common, env=env, timeout=180)
    try:
        assert started.returncode == 0, started.stderr
        assert f"BIGQUERY_EMULATOR_HOST=http://127.0.0.1:{d.BIGQUERY_PORT + offset}" in started.stdout
        assert f"STORAGE_EMULATOR_HOST=http://127.0.0.1:{d.STORAGE_PORT + offset}" in started.stdout
        victim = p.recorded(Path(home) / "run")["storage"]
        os.kill(victim[0], signal.SIGKILL)

        def storage_row() -> dict[str, object] | None:
            out = run_hyp("status", "--home", home, "--json", timeout=60).stdout
            row = next(json.loads(line) for line in out.splitlines() if '"storage"' in line)
            return row if row["restarts"] == 1 and row["health"] == "healthy" else None

        row = wait_for(storage_row, 60, "hyp status to show storage restarted and healthy", interval=0.5)
        assert row["state"] == "running" and row["last_exit"] == "killed by SIGKILL" and row["pid"] != victim[0]
        assert row["url"] == f"http://127.0.0.1:{d.STORAGE_PORT + offset}/health"
        table = run_hyp("status", "--home", home, timeout=60)
        assert table.returncode == 0, table.stdout + table.stderr  # all running and healthy again
        assert "(last exit: killed by SIGKILL)" in table.stdout
        notes = run_hyp("logs", "up", "--home", home, timeout=60)  # the keeper's own notes
        assert notes.returncode == 0 and "storage stopped unexpectedly (killed by SIGKILL)" in notes.stdout
    finally:
        down = run_hyp("down", "--home", home, timeout=120)
    assert down.returncode == 0 and "up: stopped" in down.stdout, down.stdout + down.stderr
    assert not p.recorded(Path(home) / "run")


@pytest.mark.integration
def test_a_foreground_hyp_up_restarts_and_its_summary_says_so(tmp_path):
    """`hyp up --json` in the foreground: kill -9 a service, the exit and the restart are printed and counted."""
    home, offset = tmp_path / "hyp", free_offset(["storage"])
    env = {**os.environ, "HYP_UP_RESTART_BACKOFF": "0.2", "HYP_UP_REFRESH": "0.5"}
    argv = ["up", "--services", "storage", "--home", str(home), "--port-offset", str(offset), "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        stdout = proc.stdout
        assert stdout is not None

        def line_with(text: str) -> bool:
            line = stdout.readline()  # blocks until a line; hyp up's own health timeout bounds the start
            if not line and proc.poll() is not None:
                raise RuntimeError(f"hyp up exited with {proc.returncode}:\n{''.join(seen)}")
            seen.append(line)
            return text in line

        wait_for(lambda: line_with("live summary"), 90, "hyp up's live summary", interval=0)
        victim = p.recorded(home / "run")["storage"][0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: line_with('"restarts": 1'), 60, "a summary line counting the restart", interval=0)
        summary = json.loads(seen[-1])
        assert summary["services"]["storage"] == {"restarts": 1, "last_exit": "killed by SIGKILL", "state": "running"}
        printed = "".join(seen)
        assert "storage stopped unexpectedly (killed by SIGKILL); restarting in 0.2 s" in printed
        assert "storage: restarted (restart 1)" in printed
        again = p.recorded(home / "run")["storage"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert not p.pid_alive(*again)  # the restarted process is the one stopped
    assert not p.recorded(home / "run") and not (home / "run" / sup.STATE_FILE).exists()
