"""Local processes of a `hyp up` stack: start, health-wait, find again from pid files, stop cleanly.

Each service runs as ``python -m services.cli <command>`` in its own process group (so a stop reaches its
children too), with its output in ``<run_dir>/<name>.log`` and its pid in ``<run_dir>/<name>.pid``.
Stopping sends SIGTERM to the group and SIGKILL after a bound.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from services.stack import definition as d

MARKER = "services.cli"  # every process we start is `python -m services.cli ...`


class StackError(RuntimeError):
    """A service could not be started or did not become healthy; the message says which and why."""


def command_available(s: d.Service) -> bool:
    """Whether the service's `hyp` sub-command exists in this checkout (others may not have landed yet)."""
    from services.cli import COMMANDS

    entry = COMMANDS.get(s.subcommand)
    if entry is None:
        return False
    try:
        return importlib.util.find_spec(entry[0]) is not None
    except (ImportError, ValueError):
        return False


@dataclass
class Running:
    service: d.Service
    pid: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None  # only in the process that started it

    def returncode(self) -> int | None:
        """None while running; the exit status (or -1 when not our child) once it ended."""
        if self.proc is not None:
            return self.proc.poll()
        return None if pid_alive(self.pid) else -1  # not our child: no status to read


def start_time(pid: int) -> int | None:
    """The kernel's start time of a process (clock ticks since boot), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return None if fields[0] == "Z" else int(fields[19])


def pid_alive(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` runs and (given its recorded start time) is still the process we started, not a reuse."""
    now = start_time(pid)
    if now is None:
        return False
    return started is None or now == started


def pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def log_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.log"


BACKGROUND_NICE = 10  # niceness of services off the data path (definition.Service.background)


def _lower_priority() -> None:  # runs in the child between fork and exec
    os.nice(BACKGROUND_NICE)


def start(s: d.Service, run_dir: Path, env: Mapping[str, str], args: list[str], cwd: Path) -> Running:
    run_dir.mkdir(parents=True, exist_ok=True)
    log = log_file(run_dir, s.name)
    with log.open("ab") as out:
        out.write(f"--- hyp up: starting {s.name}: hyp {' '.join(args)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", MARKER, *args],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_lower_priority if s.background else None,
        )
    if not s.oneshot:
        pid_file(run_dir, s.name).write_text(f"{proc.pid} {start_time(proc.pid) or 0}\n")
    return Running(s, proc.pid, log, proc)


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def stop_pid(
    pid: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None, started: int | None = None
) -> str:
    """SIGTERM the process group, SIGKILL it after ``timeout_s``; how it ended ("stopped", "killed", "gone")."""

    def alive() -> bool:
        if proc is not None:
            return proc.poll() is None
        return pid_alive(pid, started)

    if not alive():
        return "gone"
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            return "stopped"
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    return "killed"


def recorded(run_dir: Path) -> dict[str, tuple[int, int | None]]:
    """Services with a pid file in the run dir (name -> (pid, start time)), in the stack's start order."""
    out: dict[str, tuple[int, int | None]] = {}
    names = [*d.SERVICE_NAMES, *sorted(p.stem for p in run_dir.glob("*.pid") if p.stem not in d.SERVICE_NAMES)]
    for name in names:
        path = pid_file(run_dir, name)
        if path.exists():
            try:
                parts = [int(x) for x in path.read_text().split()]
            except ValueError:
                continue
            if parts:
                out[name] = (parts[0], parts[1] if len(parts) > 1 and parts[1] else None)
    return out


def stop_recorded(run_dir: Path, timeout_s: float, report: Callable[[str], None] = print) -> int:
    """Stop every recorded service, dependants first; how many were running."""
    pids = recorded(run_dir)
    running = 0
    for name in reversed(list(pids)):
        pid, started = pids[name]
        how = stop_pid(pid, timeout_s, started=started)
        if how != "gone":
            running += 1
        report(f"{name}: {how}")
        pid_file(run_dir, name).unlink(missing_ok=True)
    (run_dir / "stack.json").unlink(missing_ok=True)
    return running


def write_state(run_dir: Path, state: dict) -> None:
    tmp = run_dir / "stack.json.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(run_dir / "stack.json")


def read_state(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "stack.json").read_text())
    except (OSError, ValueError):
        return {}
