"""Where the whole stack's `docker compose up --wait` spends its time: each service's start, health (or, for
the one-shot training job, its exit) in seconds from the command's start, from the checkout's compose file.

Every port is published on a free 127.0.0.1 port (a stack on the default ports is left alone) and the images are
used as built (``--no-build --pull never``: build them first with ``docker compose build``). ``--services``:
what ``up`` starts (default: what pytest-hyp-local's ``hyp_stack`` starts; ``all``: every one). A poller reads
``docker ps`` for the project every 0.25 s. ``--variant`` adds a compose override: ``overlap`` is the start
order measured in docs/benchmarks.md, not adopted (the endpoint waits for nothing: it answers /health 503 until
it has loaded the model, retrying every 2 s, and its failed probes do not count until then, a start period
longer than the training; the orchestrator waits for MLflow, not for the training job; the processor for the
emulator, not for the endpoint). Variants alternate run by run:

    nice -n 19 .venv/bin/python packaging/stack_timeline.py --variants base,overlap --runs 1
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# compose `!override` (Compose >= 2.24) replaces a service's depends_on instead of merging into it
VARIANTS = {
    "base": "",
    "overlap": """\
services:
  endpoint:
    depends_on: !reset {}
    environment:
      HYP_ENDPOINT_RELOAD_INTERVAL_S: "2"
    healthcheck:
      start_period: 900s
  processor:
    depends_on: !override
      pubsub: {condition: service_healthy}
  orchestrator:
    depends_on: !override
      mlflow: {condition: service_healthy}
""",
}

_EXITED = re.compile(r"Exited \((\d+)\)")


def port_override() -> str:
    """Every service's ports on free host ports of 127.0.0.1 (the detector's range included)."""
    from services.stack import definition as d

    lines = ["services:"]
    for s in d.SERVICES:
        if s.ports:
            lines += [f"  {s.name}:", "    ports: !override", *(f'      - "127.0.0.1::{p}"' for p in s.ports)]
    return "\n".join(lines) + "\n"


class Poller(threading.Thread):
    """First time each service's container was seen up, healthy and exited (seconds since ``t0``)."""

    def __init__(self, project: str, t0: float) -> None:
        super().__init__(daemon=True)
        self.project, self.t0 = project, t0
        self.seen: dict[str, dict[str, float]] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        label = f"label=com.docker.compose.project={self.project}"
        fmt = '{{.Label "com.docker.compose.service"}}|{{.Status}}'
        while not self.stopped.wait(0.25):
            out = subprocess.run(
                ["docker", "ps", "--all", "--filter", label, "--format", fmt], capture_output=True, text=True
            ).stdout
            now = time.perf_counter() - self.t0
            for line in out.splitlines():
                service, _, status = line.partition("|")
                marks = self.seen.setdefault(service, {})
                if status.startswith("Up"):
                    marks.setdefault("up", now)
                if "(healthy)" in status:
                    marks.setdefault("healthy", now)
                match = _EXITED.search(status)
                if match:
                    marks.setdefault(f"exit {match.group(1)}", now)


def run_once(
    compose_file: Path, variant: str, services: list[str], workdir: Path, timeout: float
) -> tuple[float, dict, bool]:
    project = f"hyp-timeline-{uuid.uuid4().hex[:8]}"
    files = [compose_file, workdir / "ports.yml"]
    (workdir / "ports.yml").write_text(port_override())
    if VARIANTS[variant]:
        (workdir / f"{variant}.yml").write_text(VARIANTS[variant])
        files.append(workdir / f"{variant}.yml")
    argv = ["docker", "compose", "-p", project, *(a for f in files for a in ("-f", str(f)))]
    t0 = time.perf_counter()
    poller = Poller(project, t0)
    poller.start()
    try:
        done = subprocess.run([*argv, "up", "--wait", "--no-build", "--pull", "never", *services],
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
        ok = done.returncode == 0
        total = time.perf_counter() - t0
        if not ok:
            print(done.stderr[-2000:])
    except subprocess.TimeoutExpired:
        ok, total = False, time.perf_counter() - t0
    finally:
        poller.stopped.set()
        poller.join()
        subprocess.run([*argv, "down", "--volumes", "--remove-orphans"], capture_output=True, timeout=300)
    return total, poller.seen, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compose-file", type=Path, default=ROOT / "docker-compose.yml")
    parser.add_argument("--variants", default="base", help=f"comma-separated, alternated: {', '.join(VARIANTS)}")
    parser.add_argument("--runs", type=int, default=1, help="runs of each variant")
    parser.add_argument("--services", default="", help="comma-separated; default: hyp_stack's; all: every one")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    from services.stack.images import TEST_SERVICES

    services = [] if args.services == "all" else args.services.split(",") if args.services else TEST_SERVICES
    with tempfile.TemporaryDirectory(prefix="hyp-timeline-") as tmp:
        for i in range(args.runs):
            for variant in variants:
                load = Path("/proc/loadavg").read_text().split()[0]
                total, seen, ok = run_once(args.compose_file, variant, services, Path(tmp), args.timeout)
                state = "ready" if ok else "NOT ready"
                print(f"\n{variant} run {i + 1}: {state} in {total:.1f} s (load average at start {load})")
                for service, marks in sorted(seen.items(), key=lambda kv: max(kv[1].values(), default=0.0)):
                    print(f"  {service:<14}" + "  ".join(f"{k} {v:6.1f}" for k, v in marks.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
