"""The one load-generator run the console may own: `hyp loadgen` as a child process, bounded.

One run at a time (a second start is refused while one runs); every run has a duration, passed to
`hyp loadgen --duration`, so it stops by itself; a watchdog stops it ``GRACE_S`` later if it has not,
and the app's shutdown stops it too. The run publishes to the stack's events topic through the
emulator, as a user's `hyp loadgen` would; its final JSON report (sent, achieved rate, by kind) is read
from its standard output when it ends.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from services.common.processes import stop_group

GRACE_S = 30.0  # past its duration, a run that has not stopped is stopped
SCENARIOS = ("steady", "drift", "spike", "anomaly")  # "anomaly": steady traffic with one anomaly kind injected
ANOMALY_SHARE = 0.2  # of purchases, for the "anomaly" scenario


class LoadRuns:
    """Start, stop and report the console's load-generator run."""

    def __init__(self, env: dict[str, str], repo_root: Path | None = None) -> None:
        self.env = env
        self.cwd = repo_root
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.run: dict[str, Any] | None = None
        self._folder = Path(tempfile.mkdtemp(prefix="hyp-console-loadgen-"))
        self._watchdog: threading.Timer | None = None

    @staticmethod
    def argv(scenario: str, rate: float, duration_s: int, anomaly_kind: str | None) -> list[str]:
        """`hyp loadgen`'s command line for a run (drift and spike use the shipped scenario's own rates)."""
        args = [sys.executable, "-m", "services.cli", "loadgen", "--to", "pubsub", "--duration", f"{duration_s}s"]
        if scenario in ("drift", "spike"):
            return [*args, "--scenario", scenario]
        args += ["--rate", f"{rate:g}"]
        if scenario == "anomaly":
            if not anomaly_kind:
                raise ValueError("anomaly_kind: required for the 'anomaly' scenario")
            from loadgen.config import ANOMALY_KINDS

            # the chosen kind only: the generator's default rates of the other kinds are set to 0
            others = ",".join(f"{kind}=0" for kind in ANOMALY_KINDS if kind != anomaly_kind)
            args += ["--anomaly-rate", f"{anomaly_kind}={ANOMALY_SHARE}", "--anomaly-rate", others]
        return args

    def start(self, scenario: str, rate: float, duration_s: int, anomaly_kind: str | None) -> dict[str, Any]:
        """Start a run; RuntimeError while one runs, ValueError for a bad scenario."""
        argv = self.argv(scenario, rate, duration_s, anomaly_kind)
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                raise RuntimeError(f"a {self.run['scenario'] if self.run else ''} run is in progress: stop it first")
            out = self._folder / "report.json"
            err = self._folder / "stderr.txt"
            with open(out, "wb") as stdout, open(err, "wb") as stderr:
                self.process = subprocess.Popen(
                    argv, cwd=self.cwd, env=self.env, stdout=stdout, stderr=stderr, start_new_session=True
                )
            self.run = {
                "scenario": scenario,
                "anomaly_kind": anomaly_kind if scenario == "anomaly" else None,
                "rate": None if scenario in ("drift", "spike") else rate,
                "duration_s": duration_s,
                "started": time.time(),
                "argv": " ".join(["hyp", *argv[3:]]),
            }
            self._watchdog = threading.Timer(duration_s + GRACE_S, self.stop)
            self._watchdog.daemon = True
            self._watchdog.start()
        return self.status()

    def stop(self) -> dict[str, Any]:
        """Stop the run (SIGTERM: it prints its report; SIGKILL after 10 s)."""
        with self.lock:
            process = self.process
        if process is not None and process.poll() is None:
            stop_group(process, timeout=10.0)
            with self.lock:
                if self.run is not None:
                    self.run["stopped"] = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        return self.status()

    def status(self) -> dict[str, Any]:
        with self.lock:
            if self.process is None or self.run is None:
                return {"running": False, "run": None}
            code = self.process.poll()
            run = dict(self.run)
        elapsed = time.time() - run["started"]
        run["elapsed_s"] = round(min(elapsed, run["duration_s"]) if code is None else elapsed, 1)
        run["progress"] = round(min(1.0, elapsed / run["duration_s"]), 3) if code is None else 1.0
        if code is not None:
            run["exit_code"] = code
            run["report"] = _json_tail(self._folder / "report.json")
            run["error"] = None if code in (0, -15) else _last_line(self._folder / "stderr.txt")
        return {"running": code is None, "run": run}

    def close(self) -> None:
        self.stop()
        for name in ("report.json", "stderr.txt"):
            (self._folder / name).unlink(missing_ok=True)
        self._folder.rmdir()


def _json_tail(path: Path) -> dict[str, Any] | None:
    """The last JSON object the run printed (its report), if any."""
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        return doc if isinstance(doc, dict) else None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _last_line(path: Path) -> str | None:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return None
    return lines[-1][:500] if lines else None
