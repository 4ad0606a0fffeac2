"""`hyp up --detach`: the stack is started by a background keeper process, which then supervises it.

The command forks before it starts anything. The child leaves the terminal's session and starts the stack;
until it is ready its stdout comes back to the command through a pipe and its stderr is the command's own,
so the user sees the start as with a foreground `hyp up`. Once the stack is healthy the child says so on the
pipe, moves its own output to ``<run_dir>/up.out`` and stays as the keeper: it restarts services that exit
(services/stack/supervise.py), recorded as ``<run_dir>/up.pid`` so that `hyp down` stops it before the
services. The command returns 0 once the keeper is ready, or the keeper's exit status when the start failed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from services.common.processes import wait_for
from services.stack import processes as p

READY = b"\x00hyp up: ready\n"
KEEPER = "up"  # <run_dir>/up.pid, up.out
RELAY_STOP_S = 60.0  # Ctrl-C while the keeper starts the stack: how long it may take to stop what it started


def run(run_dir: Path, body: Callable[[Callable[[], None]], int]) -> int:
    """Fork; the child runs ``body(ready)`` as the keeper and the parent relays its output until ``ready()``.

    ``body`` returns the keeper's exit status (after ``ready()``, when it stops keeping).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the keeper
        os.close(read_end)
        code = 1
        try:
            code = _keeper(run_dir, write_end, body)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    return _relay(pid, read_end)


def _keeper(run_dir: Path, write_end: int, body: Callable[[Callable[[], None]], int]) -> int:
    os.setsid()  # out of the terminal's session: closing it (or Ctrl-C there) does not reach the stack
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(write_end, 1)  # stderr stays the command's own until ready: progress and errors reach the user
    pid_file = p.pid_file(run_dir, KEEPER)
    pid_file.write_text(f"{os.getpid()} {p.start_time(os.getpid()) or 0}\n")

    def ready() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(write_end, READY)
        p.rotate_raw(p.out_file(run_dir, KEEPER))  # bounded as the services' raw output is
        log = os.open(p.out_file(run_dir, KEEPER), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(write_end)

    try:
        return body(ready)
    finally:
        pid_file.unlink(missing_ok=True)


def _relay(pid: int, read_end: int) -> int:
    """Copy the keeper's output to ours until it is ready (0) or exits (its status)."""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        pending = b""
        try:
            while True:
                chunk = pipe.read(65536)
                if not chunk:
                    break
                pending += chunk
                if READY in pending:
                    before, _, _ = pending.partition(READY)
                    _out(before)
                    return 0
                cut = pending.rfind(b"\n") + 1
                _out(pending[:cut])
                pending = pending[cut:]
        except KeyboardInterrupt:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)  # the keeper stops what it started
            _wait(pid, RELAY_STOP_S)
            return 130
        _out(pending)
    return _wait(pid, RELAY_STOP_S)


def _out(data: bytes) -> None:
    if data:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def _wait(pid: int, timeout_s: float) -> int:
    """The keeper's exit status, once it has exited (1 if it is still there after ``timeout_s``)."""
    status: list[int] = []

    def exited() -> bool:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status.append(os.waitstatus_to_exitcode(raw))
        return bool(done)

    try:
        wait_for(exited, timeout_s, "the keeper to exit", interval=0.1)
    except TimeoutError:
        return 1
    return status[0]
