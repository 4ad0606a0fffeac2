"""`hyp up`: the whole stack as local processes, no Docker needed.

Starts the services of services/stack/definition.py in dependency order (the emulator with its topology,
MLflow, a first champion when the registry is empty, the detector, the endpoint, the processor, the load
generator), waits until each is healthy, prints the URLs, then shows a live summary until Ctrl-C (or
``--duration``), and stops everything: SIGTERM, then SIGKILL after a bound. ``--detach`` leaves the stack
running for ``hyp status``, ``hyp logs SERVICE`` and ``hyp down``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from services.common import metric_names, prometheus
from services.common.config import Command, ConfigError
from services.stack import definition as d
from services.stack import detach, summary
from services.stack import processes as p
from services.stack import supervise as sup
from services.stack.healthcheck import probe
from services.stack.settings import StackSettings

REPO_ROOT = Path(__file__).resolve().parents[2]  # children import `services` from this checkout


STARTUP_POLL_S = 0.5  # while services start: one health probe (or exit check) per starting service this often


class _Stop(BaseException):
    """SIGTERM in the foreground or the keeper. A BaseException, like KeyboardInterrupt, so that no ``except
    Exception`` on the way (the warehouse tally's, a scrape's) swallows it and leaves the stack running."""


def _stop_once() -> Callable[[int, FrameType | None], None]:
    """A SIGTERM handler that raises _Stop on the first signal only: a second SIGTERM while everything is being
    stopped is ignored rather than cutting the stop short."""
    seen: list[int] = []

    def on_term(signum: int, frame: FrameType | None) -> None:
        if not seen:
            seen.append(signum)
            raise _Stop

    return on_term


def _csv(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    for name in names:
        if name not in d.SERVICE_NAMES:
            raise argparse.ArgumentTypeError(f"unknown service {name!r} (services: {', '.join(d.SERVICE_NAMES)})")
    return names


def command() -> Command[StackSettings]:
    cli = Command("up", StackSettings, description=__doc__.splitlines()[0])
    ap = cli.parser
    ap.add_argument("--detach", "-d", action="store_true", help="leave the stack running and return once healthy")
    ap.add_argument("--services", type=_csv, help="only these services (and what they depend on), comma-separated")
    ap.add_argument("--without", type=_csv, default=[], help="leave these services out, comma-separated")
    ap.add_argument("--duration", type=float, help="stop after this many seconds of live summary (exit 0)")
    ap.add_argument(
        "--expect-detections",
        type=int,
        metavar="N",
        help="stop (exit 0) once N anomalies are detected; with --duration, exit 1 if they do not come in time",
    )
    ap.add_argument("--rate", type=float, help="load generator events/s (env HYP_LOADGEN_RATE)")
    cli.flag("home", help="data and run directory of the local stack")
    cli.flag("health_timeout_s", "--health-timeout", help="seconds each service may take to become healthy")
    cli.flag("port_offset", "--port-offset", help="move every port of the stack by this much (a second stack)")
    cli.flag(
        "detector_workers",
        "--detector-workers",
        help="detector processes sharing its one subscription (detector-0, detector-1 ...; each its own worker id "
        "and metrics port)",
    )
    ap.add_argument("--json", action="store_true", help="print the live summary as JSON lines")
    return cli


def select(only: list[str] | None, without: list[str]) -> list[d.Service]:
    """The services to start, in dependency order: ``only`` plus their dependencies, minus ``without``."""
    plan = d.order()
    if only:
        wanted: set[str] = set()
        todo = list(only)
        while todo:
            name = todo.pop()
            if name not in wanted:
                wanted.add(name)
                todo.extend(d.service(name).depends_on)
        plan = [s for s in plan if s.name in wanted]
    return [s for s in plan if s.name not in without]


def plan_for(only: list[str] | None, without: list[str], detector_workers: int = 1) -> list[d.Service]:
    """:func:`select`, then the detector as ``detector_workers`` workers (definition.scale)."""
    return list(d.scale(select(only, without), detector_workers))


def detector_urls(names: set[str] | list[str], port_offset: int = 0) -> list[str]:
    """The /metrics URLs of the detector or of each of its workers among ``names`` (a running stack's services)."""
    ports = [s.health.port for s in d.scale(d.SERVICES, d.MAX_DETECTOR_WORKERS) if s.name in names and s.health]
    if d.DETECTOR in names:
        ports.insert(0, d.DETECTOR_METRICS_PORT)
    return [f"http://127.0.0.1:{port + port_offset}/metrics" for port in ports]


def merged_scrape(urls: list[str]) -> prometheus.Scrape:
    """The samples of several workers' pages together: sums over them are the whole job's (each worker's samples
    carry its ``worker_id`` label)."""
    out = prometheus.Scrape()
    for url in urls:
        for name, samples in summary.scrape(url).samples.items():
            out.samples.setdefault(name, []).extend(samples)
    return out


def tunables(rate: float | None) -> dict[str, str]:
    values = {k: os.environ.get(k, v) for k, v in d.TUNABLES.items()}
    if rate is not None:
        values["HYP_LOADGEN_RATE"] = f"{rate:g}"
    return values


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stop_all(started: list[p.Running], settings: StackSettings, run_dir: Path) -> None:
    for r in reversed(started):
        if r.service.oneshot:
            continue
        how = p.stop_pid(r.pid, settings.stop_timeout_s, r.proc)
        print(f"  {r.service.name}: {how}", file=sys.stderr)
        p.pid_file(run_dir, r.service.name).unlink(missing_ok=True)
    (run_dir / "stack.json").unlink(missing_ok=True)
    (run_dir / sup.STATE_FILE).unlink(missing_ok=True)


class FirstDetection:
    """Watches the detector's anomaly counter while the rest of the stack starts; says when the first lands."""

    def __init__(self, t0: float, every_s: float = 1.0, port_offset: int = 0, urls: list[str] | None = None) -> None:
        self.t0, self.every_s, self.port_offset = t0, every_s, port_offset
        self.urls = urls if urls is not None else detector_urls([d.DETECTOR], port_offset)
        self.seconds: float | None = None  # after `hyp up` started
        self._next = 0.0

    def poll(self) -> None:
        if self.seconds is not None or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.every_s
        found = summary.value(merged_scrape(self.urls), metric_names.DETECTOR_ANOMALIES)
        if found:
            self.seconds = time.monotonic() - self.t0
            print(f"first detection {self.seconds:.1f} s after `hyp up` started (the detector, on hyp-detections)")


def start_stack(
    plan: list[d.Service], settings: StackSettings, values: dict[str, str], first: FirstDetection | None = None
) -> list[p.Running]:
    """Start ``plan``, each service as soon as what it depends on is ready (independent ones in parallel).

    Polls every starting service (health check, or exit status for one-shot jobs) within bounds; on a
    failure stops what was started and raises StackError naming the service and the reason. With ``first``,
    the detector's first anomaly is reported as soon as it is published, while other services still start.
    """
    home = settings.home.resolve()
    run_dir = home / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    started: list[p.Running] = []
    ready: set[str] = set()
    waiting: dict[str, tuple[p.Running, float]] = {}  # name -> (process, deadline)
    todo = list(plan)
    launch = launcher(home, values, settings.port_offset)
    t0 = time.monotonic()

    def note(name: str, what: str) -> None:
        print(f"  {name:<12} {what:<9} {time.monotonic() - t0:6.1f} s", file=sys.stderr)

    try:
        while todo or waiting:
            for s in list(todo):
                if not all(dep in ready for dep in s.depends_on if dep in {x.name for x in plan}):
                    continue
                todo.remove(s)
                if not p.command_available(s):
                    print(f"  {s.name:<12} skipped: `hyp {s.subcommand}` is not in this checkout", file=sys.stderr)
                    ready.add(s.name)
                    continue
                if already_done(s, home, values, settings.port_offset):
                    ready.add(s.name)
                    note(s.name, "done")
                    continue
                r = launch(s)
                started.append(r)
                timeout = settings.init_timeout_s if s.oneshot else settings.health_timeout_s
                waiting[s.name] = (r, time.monotonic() + timeout)
            if not waiting:
                if todo:  # only reachable when a dependency is outside the plan and never becomes ready
                    raise p.StackError(f"cannot start {', '.join(s.name for s in todo)}: dependencies not ready")
                break
            for name, (r, deadline) in list(waiting.items()):
                if check_ready(r, deadline, settings.port_offset):
                    del waiting[name]
                    ready.add(name)
                    note(name, "done" if r.service.oneshot else "healthy")
            detectors = {r.service.name for r in started if d.is_detector(r.service.name)}
            if first is not None and detectors and detectors <= ready:
                first.poll()
            time.sleep(STARTUP_POLL_S)
    except BaseException:
        _stop_all(started, settings, run_dir)
        raise
    return started


def launcher(home: Path, values: dict[str, str], port_offset: int = 0) -> Callable[[d.Service], p.Running]:
    """What starts a service of this stack (its environment and command for the local place), first or again."""

    def launch(s: d.Service) -> p.Running:
        data = str(home)
        env = {**os.environ, **values, **d.environment(s, "local", data=data, tunables=values, port_offset=port_offset)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        args = d.command(s, "local", data=data, tunables=values, port_offset=port_offset)
        return p.start(s, home / "run", env, args, Path.cwd())

    return launch


def already_done(s: d.Service, home: Path, values: dict[str, str], port_offset: int = 0) -> bool:
    """Whether a one-shot job's ``done_if`` probe passes now (e.g. the registry already has a champion)."""
    if not s.oneshot or s.done_if is None:
        return False
    url = d.resolve(s.done_if.url(port_offset=port_offset), "local", data=str(home), tunables=values)
    return probe(url, s.done_if.expect, timeout=2.0) is None


def check_ready(r: p.Running, deadline: float, port_offset: int = 0) -> bool:
    """One poll of a starting service: True when ready, False while starting; StackError on failure."""
    s = r.service
    code = r.returncode()
    if s.oneshot:
        if code is None:
            if time.monotonic() > deadline:
                raise p.StackError(f"{s.name} did not finish in time; log {r.log}")
            return False
        if code != 0:
            raise p.StackError(f"{s.name} failed with status {code}; log {r.log}:\n{p.tail(r.log)}")
        return True
    if code is not None:
        raise p.StackError(f"{s.name} exited with status {code} while starting; log {r.log}:\n{p.tail(r.log)}")
    if s.health is None:
        return True
    reason = probe(s.health.url(port_offset=port_offset), s.health.expect, timeout=1.0)
    if reason and time.monotonic() > deadline:
        raise p.StackError(f"{s.name} not healthy in time ({reason}); log {r.log}")
    return reason is None


def state(started: list[p.Running], settings: StackSettings) -> dict[str, object]:
    """stack.json: what `hyp status` needs to know about the running stack (its ports' offset)."""
    return {
        "started_at": time.time(),
        "services": [r.service.name for r in started],
        "port_offset": settings.port_offset,
        "detector_workers": settings.detector_workers,
    }


def print_urls(started: list[p.Running], settings: StackSettings) -> None:
    print("hyp-local is up:")
    lines = [(label, url) for r in started for label, url in r.service.urls.items()]
    # the emulator-host variables Google's clients honour first (and the Read API beside BigQuery): what a user exports
    lines = d.client_first(lines)
    for label, url in lines:
        where = d.resolve(url, "local", data=str(settings.home.resolve()), port_offset=settings.port_offset)
        print(f"  {label:<18} {where}")
    print(f'  {"warehouse":<18} hyp sql "SELECT count(*) FROM cloud_run"   ({settings.home.resolve() / "warehouse"})')
    print(f"  {'logs':<18} hyp logs SERVICE   ({settings.home.resolve() / 'run'})")


RESTART_POLL_S = 0.5  # while a service waits to be restarted, the live loop comes round this often
WAREHOUSE_EVERY_S = 10.0  # the live summary's warehouse query (it reads every table) at most this often


class Sampler:
    """The live summary's snapshots: metrics (two small HTTP scrapes) every refresh, the warehouse query at
    most every ``every_s``; in between the last warehouse counts are shown again (without re-listing its
    latest detections)."""

    def __init__(self, emulator: str | None, detector: list[str], warehouse: Path, every_s: float) -> None:
        self.emulator, self.detector, self.warehouse, self.every_s = emulator, detector, warehouse, every_s
        self._stats: summary.WarehouseStats | None = None
        self._next = 0.0

    def take(self, latest_after: float | None) -> summary.Snapshot:
        now = time.monotonic()
        em = summary.scrape(self.emulator) if self.emulator else prometheus.Scrape()
        det = merged_scrape(self.detector)  # every worker's samples: the job's totals
        if now >= self._next:
            self._next = now + self.every_s
            self._stats = summary.warehouse_stats(self.warehouse, latest_after)
            return summary.from_samples(em, det, self._stats, at=now)
        wh = dataclasses.replace(self._stats, latest=[]) if self._stats is not None else None
        return summary.from_samples(em, det, wh, at=now)


def live(
    started: list[p.Running],
    settings: StackSettings,
    args: argparse.Namespace,
    t0: float,
    started_at: float,
    first_detection: float | None = None,
    keeper: sup.Supervisor | None = None,
) -> int:
    names = {r.service.name for r in started}
    emulator = d.service("pubsub").health
    offset = settings.port_offset
    emulator_metrics = f"http://127.0.0.1:{emulator.port + offset}/metrics" if emulator and "pubsub" in names else None
    detector_metrics = detector_urls(names, offset)
    sampler = Sampler(emulator_metrics, detector_metrics, settings.home.resolve() / "warehouse", WAREHOUSE_EVERY_S)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    before: summary.Snapshot | None = None
    latest_after: float | None = started_at  # only detections of this run (scored_at is UTC, like time.time)
    tty = sys.stdout.isatty() and not args.json
    while True:
        for note in keeper.poll() if keeper is not None else []:
            print(("\r" if tty else "") + note, file=sys.stderr)
        snap = sampler.take(latest_after)
        if snap.warehouse and snap.warehouse.latest:
            if first_detection is None:
                first_detection = time.monotonic() - t0
                print(f"\rfirst detection {first_detection:.1f} s after `hyp up` started" + " " * 20)
            for row in snap.warehouse.latest:
                print(("\r" if tty else "") + summary.detection_line(row))
            latest_after = max(row["at"] for row in snap.warehouse.latest)
        if args.json:
            text = summary.as_json(snap, keeper.summary() if keeper is not None else None)
        else:
            text = summary.line(snap, before) + (keeper.suffix() if keeper is not None else "")
        print(("\r" + text) if tty else text, end="" if tty else "\n", flush=True)
        before = snap
        flagged = snap.anomalies or 0
        if args.expect_detections is not None and flagged >= args.expect_detections:
            print(f"\n{flagged:.0f} anomalies detected (wanted {args.expect_detections})")
            return 0
        if deadline is not None and time.monotonic() >= deadline:
            if args.expect_detections is not None:
                wanted = args.expect_detections
                print(f"\nonly {flagged:.0f} of {wanted} anomalies in {args.duration:g} s", file=sys.stderr)
                return 1
            print()
            down = keeper.failed() if keeper is not None else []
            if down:
                print(f"left down after repeated exits: {', '.join(down)}", file=sys.stderr)
            return 1 if down else 0
        pause = settings.refresh_s
        if keeper is not None and keeper.restarting():
            pause = min(pause, RESTART_POLL_S)
        if deadline is not None:
            pause = min(pause, max(0.05, deadline - time.monotonic()))
        time.sleep(pause)


def main(argv: list[str] | None = None) -> int:
    cli = command()
    try:
        args, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    if args.rate is not None and args.rate <= 0:
        return cli.fail("--rate: must be > 0")
    if args.duration is not None and args.duration <= 0:
        return cli.fail("--duration: must be > 0")
    run_dir = settings.home.resolve() / "run"
    alive = [n for n, (pid, started) in p.recorded(run_dir).items() if p.pid_alive(pid, started)]
    if alive:
        names = ", ".join(alive)
        print(f"hyp up: a stack is already running from {run_dir} ({names}); `hyp down` first", file=sys.stderr)
        return 1
    plan = plan_for(args.services, args.without, settings.detector_workers)
    offset = settings.port_offset
    busy = [
        f"{s.name}:{port + offset}"
        for s in plan
        for port in s.ports
        if p.command_available(s) and port_in_use(port + offset)
    ]
    if busy:
        names = ", ".join(busy)
        print(f"hyp up: ports already in use on 127.0.0.1: {names} (another stack? `hyp down`)", file=sys.stderr)
        return 1

    t0, started_at = time.monotonic(), time.time()
    print(f"starting {', '.join(s.name for s in plan)}", file=sys.stderr)
    if args.detach:
        values = tunables(args.rate)
        first = FirstDetection(t0, port_offset=offset, urls=detector_urls({s.name for s in plan}, offset))
        return detach.run(run_dir, lambda ready: keep(plan, settings, values, ready, first))

    previous = signal.signal(signal.SIGTERM, _stop_once())  # SIGTERM behaves like Ctrl-C: stop everything cleanly
    started: list[p.Running] = []
    try:
        first = FirstDetection(t0, port_offset=offset, urls=detector_urls({s.name for s in plan}, offset))
        values = tunables(args.rate)
        started = start_stack(plan, settings, values, first)
        p.write_state(run_dir, state(started, settings))
        print_urls(started, settings)
        print("live summary (Ctrl-C stops the stack):")
        home = settings.home.resolve()
        keeper = sup.Supervisor(started, launcher(home, values, offset), run_dir, settings.restart_policy)
        return live(started, settings, args, t0, started_at, first.seconds, keeper)
    except p.StackError as exc:
        print(f"hyp up: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Stop):
        print("\nstopping", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop_all(started, settings, run_dir)
        signal.signal(signal.SIGTERM, previous)


def keep(
    plan: list[d.Service],
    settings: StackSettings,
    values: dict[str, str],
    ready: Callable[[], None],
    first: FirstDetection | None = None,
) -> int:
    """The detached keeper (services/stack/detach.py): start ``plan``, say ``ready()``, then restart what exits
    until SIGTERM (`hyp down`, which then stops the services itself). The exit status: 1 if the start failed."""
    signal.signal(signal.SIGTERM, _stop_once())
    home = settings.home.resolve()
    try:
        started = start_stack(plan, settings, values, first)  # on a failure it stops what it started
    except p.StackError as exc:
        print(f"hyp up: {exc}", file=sys.stderr)
        return 1
    except _Stop:
        return 1
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    p.write_state(home / "run", state(started, settings))
    print_urls(started, settings)
    print("detached: `hyp status`, `hyp logs SERVICE`, `hyp down` (services that exit are restarted)")
    keeper = sup.Supervisor(
        started, launcher(home, values, settings.port_offset), home / "run", settings.restart_policy
    )
    ready()
    while not stopping:
        for note in keeper.poll():
            print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {note}", flush=True)
        time.sleep(RESTART_POLL_S)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
