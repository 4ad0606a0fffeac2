"""Local processes of a `hyp up` stack: start, health-wait, find again from pid files, stop cleanly.

Each service runs as ``python -m services.cli <command>`` in its own process group (so a stop reaches its
children too), with its pid in ``<run_dir>/<name>.pid``. Its structured log goes to ``<run_dir>/<name>.log``
(``HYP_LOG_FILE``: the service rotates it by size, services/common/logs.py) and its raw stdout/stderr
(tracebacks, third-party prints) to ``<run_dir>/<name>.out``, which is moved to ``<name>.out.1`` at a start
when it is over ``RAW_MAX_BYTES``. Stopping sends SIGTERM to the group and SIGKILL after a bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common import commands, logs
from services.common.processes import wait_for
from services.stack import definition as d

MARKER = "services.cli"  # every process we start is `python -m services.cli ...`


class StackError(RuntimeError):
    """A service could not be started or did not become healthy; the message says which and why."""


def command_available(s: d.Service) -> bool:
    """Whether the service's `hyp` sub-command exists in this checkout (others may not have landed yet)."""
    return commands.available(s.subcommand)


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
    """The service's structured log (JSON lines, rotated by the service: ``.log.1``, ``.log.2`` are older)."""
    return run_dir / f"{name}.log"


def out_file(run_dir: Path, name: str) -> Path:
    """The service's raw stdout/stderr (``.out.1`` is the one before the last start that found it too big)."""
    return run_dir / f"{name}.out"


RAW_MAX_BYTES = 1_000_000  # raw output kept per service: this much (+ one older file) at each start


def rotate_raw(path: Path, max_bytes: int = RAW_MAX_BYTES) -> None:
    try:
        if path.stat().st_size > max_bytes:
            path.replace(path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass


def _now_ts() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


START_MARK = "--- hyp up: starting "


BACKGROUND_NICE = 10  # niceness of services off the data path (definition.Service.background)


def _lower_priority() -> None:  # runs in the child between fork and exec
    os.nice(BACKGROUND_NICE)


def start(s: d.Service, run_dir: Path, env: Mapping[str, str], args: list[str], cwd: Path) -> Running:
    run_dir.mkdir(parents=True, exist_ok=True)
    log = log_file(run_dir, s.name)
    raw = out_file(run_dir, s.name)
    rotate_raw(raw)
    child_env = {**env, logs.LOG_FILE_ENV: str(log)}  # per service, whatever the caller's environment says
    with raw.open("ab") as out:
        out.write(f"{START_MARK}{s.name} at {_now_ts()}: hyp {' '.join(args)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", MARKER, *args],
            env=child_env,
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


def _read_lines(paths: list[Path]) -> list[str]:
    out: list[str] = []
    for path in paths:
        try:
            with path.open("r", encoding="utf-8", errors="replace") as fh:
                out.extend(line if line.endswith("\n") else line + "\n" for line in fh)
        except OSError:
            continue
    return out


def _ts_of(line: str) -> str | None:
    """The time of a JSON log line (services/common/logs.py: ``{"ts": "...Z", ...}``), or None."""
    if line.startswith('{"ts": "'):
        end = line.find('"', 8)
        if end > 8:
            return line[8:end]
    return None


def _mark_ts(line: str) -> str | None:
    if line.startswith(START_MARK):
        at = line.find(" at ", len(START_MARK))
        end = line.find(": ", at + 4)
        if at > 0 and end > at:
            return line[at + 4 : end]
    return None


Key = tuple[str, int]  # (time, rank among lines of that time)


def _raw_keyed(lines: list[str], last_write: str) -> list[tuple[Key, str]]:
    """Raw output with a time for ordering: a start mark its own; other lines that of the end of their run
    (just before the next start mark; for the last run, after the file's last write), so a crash's traceback
    comes after the structured log of the run it ended."""
    keyed: list[tuple[Key, str]] = []
    block: list[str] = []
    for line in lines:
        ts = _mark_ts(line)
        if ts is None:
            block.append(line)
            continue
        keyed += [((ts, -2), b) for b in block]
        block = []
        keyed.append(((ts, -1), line))
    end = max(last_write, keyed[-1][0][0]) if keyed else last_write
    keyed += [((end, 1), b) for b in block]
    return keyed


def _mtime_ts(path: Path) -> str:
    try:
        m = path.stat().st_mtime
    except OSError:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(m)) + f".{int(m * 1000) % 1000:03d}Z"


def merged_lines(run_dir: Path, name: str) -> list[str]:
    """A service's structured log (with its rotated files) and raw output, merged in time order where the
    times are known (JSON lines and start marks carry one; see _raw_keyed for the rest)."""
    log = log_file(run_dir, name)
    backups = sorted(run_dir.glob(f"{name}.log.*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    structured: list[tuple[Key, str]] = []
    last = ""
    for line in _read_lines([*backups, log]):
        last = _ts_of(line) or last  # lines without a time (old logs) keep the previous one's
        structured.append(((last, 0), line))
    out = out_file(run_dir, name)
    raw = _raw_keyed(_read_lines([out.with_name(out.name + ".1"), out]), _mtime_ts(out))
    return [line for _, line in sorted([*raw, *structured], key=lambda kv: kv[0])]  # stable: each file's order


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of the service whose log is ``path`` (structured log and raw output merged)."""
    merged = merged_lines(path.parent, path.name.removesuffix(".log"))
    return "".join(merged[-lines:]).rstrip("\n") if lines else ""


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
    try:
        wait_for(lambda: not alive(), timeout_s, f"process group {pid} to stop", interval=0.1)
        return "stopped"
    except TimeoutError:
        pass
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
    (run_dir / "supervision.json").unlink(missing_ok=True)  # services/stack/supervise.py's state
    return running


def write_state(run_dir: Path, state: dict[str, Any]) -> None:
    tmp = run_dir / "stack.json.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(run_dir / "stack.json")


def read_state(run_dir: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads((run_dir / "stack.json").read_text())
        return state
    except (OSError, ValueError):
        return {}
