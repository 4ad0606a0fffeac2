"""`hyp up`'s supervision: a service that exits unexpectedly is started again, with backoff, and counted.

What compose does with ``restart: unless-stopped``, for the local processes. Each exit is recorded with its
reason (the exit status or the signal, and the last line of the service's output); the next start waits
``backoff_s``, doubled after each exit in a row up to ``max_backoff_s``, and a service that stays up for
``window_s`` starts the count again. A service that exits ``max_failures`` times within ``window_s`` is
reported and left down (a crash loop would only burn the CPU the rest of the stack needs).

The state (restarts, last exit, running / restarting / failed) is written to ``<run_dir>/supervision.json``
after every change, for ``hyp status``; the live summary shows it too.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.stack import definition as d
from services.stack import processes as p

STATE_FILE = "supervision.json"


@dataclass(frozen=True)
class Policy:
    backoff_s: float = 1.0  # wait before the first restart
    max_backoff_s: float = 30.0
    max_failures: int = 5  # this many exits ...
    window_s: float = 120.0  # ... within this many seconds: left down


@dataclass
class Record:
    """One supervised service: how often it was restarted, why it last exited, what happens next."""

    restarts: int = 0
    last_exit: str | None = None
    state: str = "running"  # running | restarting | failed
    exits: deque[float] = field(default_factory=deque)  # monotonic times of recent unexpected exits
    restart_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"restarts": self.restarts, "last_exit": self.last_exit, "state": self.state}


def exit_reason(code: int, log: Path | None = None) -> str:
    """``killed by SIGKILL``, or ``exit status 1`` with the last line the service wrote (its own reason)."""
    if code < 0:  # a signal: whatever it last logged is not why it ended
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    reason = f"exit status {code}"
    last = p.tail(log, 1).strip() if log is not None else ""
    if last.startswith("{"):  # a structured log line: its message
        with contextlib.suppress(ValueError, AttributeError):
            last = str(json.loads(last).get("msg", last))
    if last and not last.startswith(p.START_MARK):
        reason += f": {last[:160]}"
    return reason


class Supervisor:
    """Watches ``running`` (replacing an entry in place when it restarts it) and starts exited services again.

    ``launch(service)`` starts one service the way `hyp up` first started it. ``poll()`` does one round and
    returns the lines worth printing; call it every second or so.
    """

    def __init__(
        self,
        running: list[p.Running],
        launch: Callable[[d.Service], p.Running],
        run_dir: Path,
        policy: Policy = Policy(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.running, self.launch, self.run_dir, self.policy, self.clock = running, launch, run_dir, policy, clock
        self.records: dict[str, Record] = {r.service.name: Record() for r in running if not r.service.oneshot}
        self.write()

    def _index(self, name: str) -> int:
        return next(i for i, r in enumerate(self.running) if r.service.name == name)

    def poll(self) -> list[str]:
        now = self.clock()
        notes: list[str] = []
        for name, rec in self.records.items():
            r = self.running[self._index(name)]
            if rec.state == "running":
                code = r.returncode()
                if code is None:
                    continue
                notes.append(self._exited(name, rec, r, code, now))
            elif rec.state == "restarting" and rec.restart_at is not None and now >= rec.restart_at:
                try:
                    self.running[self._index(name)] = self.launch(r.service)
                except OSError as exc:  # could not even start (a folder gone, no memory): counts as an exit
                    rec.state = "running"
                    notes.append(self._exited(name, rec, r, None, now, f"could not start: {exc}"))
                    continue
                rec.state, rec.restart_at, rec.restarts = "running", None, rec.restarts + 1
                notes.append(f"{name}: restarted (restart {rec.restarts})")
                self.write()
        return notes

    def _exited(
        self, name: str, rec: Record, r: p.Running, code: int | None, now: float, reason: str | None = None
    ) -> str:
        rec.last_exit = reason if reason is not None or code is None else exit_reason(code, r.log)
        rec.exits.append(now)
        while rec.exits and rec.exits[0] < now - self.policy.window_s:
            rec.exits.popleft()
        with contextlib.suppress(OSError):
            p.pid_file(self.run_dir, name).unlink(missing_ok=True)
        if len(rec.exits) >= self.policy.max_failures:
            rec.state, rec.restart_at = "failed", None
            self.write()
            window = f"{self.policy.window_s:g} s"
            return f"{name} exited {len(rec.exits)} times within {window} ({rec.last_exit}); left down, log {r.log}"
        delay = min(self.policy.max_backoff_s, self.policy.backoff_s * 2 ** (len(rec.exits) - 1))
        rec.state, rec.restart_at = "restarting", now + delay
        self.write()
        return f"{name} stopped unexpectedly ({rec.last_exit}); restarting in {delay:g} s"

    def restarting(self) -> bool:
        return any(rec.state == "restarting" for rec in self.records.values())

    def failed(self) -> list[str]:
        return [name for name, rec in self.records.items() if rec.state == "failed"]

    def suffix(self) -> str:
        """The live summary's addition: `` | restarts detector 2, console 1 | DOWN processor`` (empty if none)."""
        restarted = [f"{n} {rec.restarts}" for n, rec in self.records.items() if rec.restarts]
        out = f" | restarts {', '.join(restarted)}" if restarted else ""
        waiting = [n for n, rec in self.records.items() if rec.state == "restarting"]
        if waiting:
            out += f" | restarting {', '.join(waiting)}"
        if self.failed():
            out += f" | DOWN {', '.join(self.failed())}"
        return out

    def summary(self) -> dict[str, dict[str, Any]]:
        return {name: rec.as_json() for name, rec in self.records.items()}

    def write(self) -> None:
        """The state for `hyp status`; a run dir that cannot be written (removed by hand) does not stop the
        supervision, only its report."""
        path = self.run_dir / STATE_FILE
        tmp = path.with_name(STATE_FILE + ".tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(self.summary(), indent=2))
            tmp.replace(path)


def read(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The supervision state a running `hyp up` wrote (empty when there is none)."""
    try:
        state = json.loads((run_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}
