"""`hyp status`: each service of the local stack: running or not, healthy or not, restarts and last exit.

With several detector workers (``hyp up --detector-workers N``) each worker is its own row (``detector-0``,
``detector-1`` ...) with the events/s it handles, measured over ``RATE_WINDOW_S`` by two scrapes of its page.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from services.common import metric_names
from services.common.config import Command, ConfigError
from services.stack import definition as d
from services.stack import processes as p
from services.stack import supervise as sup
from services.stack.healthcheck import probe
from services.stack.settings import StackSettings
from services.stack.summary import scrape, value

RATE_WINDOW_S = 1.0  # a detector's events/s: the change of its events counter over this long


def _events(url: str) -> float | None:
    return value(scrape(url), metric_names.DETECTOR_EVENTS)


def add_rates(table: list[dict[str, Any]], window_s: float = RATE_WINDOW_S) -> None:
    """``rate`` (events/s) on each healthy detector row: its counter read twice, ``window_s`` apart."""
    live = [r for r in table if d.is_detector(r["service"]) and r["health"] == "healthy" and r["url"]]
    first = {r["service"]: _events(r["url"]) for r in live}
    if live:
        time.sleep(window_s)
    for r in table:
        r["rate"] = None
        before = first.get(r["service"])
        if before is not None:
            after = _events(r["url"])
            r["rate"] = None if after is None else round((after - before) / window_s, 1)


def rows(home: Path, port_offset: int = 0) -> list[dict[str, Any]]:
    """One row per service; the ports' offset is the running stack's own (stack.json), else ``port_offset``."""
    pids = p.recorded(home / "run")
    stack = p.read_state(home / "run")
    offset = int(stack.get("port_offset", port_offset))
    workers = int(stack.get("detector_workers", 1))
    supervised = sup.read(home / "run") if pids else {}  # a state file left by a stopped stack means nothing
    out = []
    for s in d.scale(d.SERVICES, workers):
        if s.oneshot:
            continue
        pid, started = pids.get(s.name, (None, None))
        alive = pid is not None and p.pid_alive(pid, started)
        health = None
        if alive and s.health is not None:
            health = probe(s.health.url(port_offset=offset), s.health.expect, timeout=1.0) or "healthy"
        kept = supervised.get(s.name, {})
        state = "running" if alive else ("exited" if pid else "stopped")
        if not alive and kept.get("state") in ("restarting", "failed"):
            state = kept["state"]  # `hyp up` is starting it again, or gave up on it
        out.append(
            {
                "service": s.name,
                "pid": pid if alive else None,
                "state": state,
                "health": health if alive else None,
                "url": s.health.url(port_offset=offset) if s.health else None,
                "restarts": kept.get("restarts", 0),
                "last_exit": kept.get("last_exit"),
            }
        )
    return out


def command() -> Command[StackSettings]:
    cli = Command("status", StackSettings, description=__doc__.splitlines()[0])
    cli.flag("home", help="data and run directory of the local stack")
    cli.flag("port_offset", "--port-offset", help="the stack's port offset (read from the running stack if it says)")
    cli.parser.add_argument("--json", action="store_true", help="one JSON object per service")
    return cli


def main(argv: list[str] | None = None) -> int:
    cli = command()
    try:
        args, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    home = settings.home.resolve()
    table = rows(home, settings.port_offset)
    add_rates(table)
    if args.json:
        for row in table:
            print(json.dumps(row))
    else:
        print(f"{'SERVICE':<12} {'STATE':<10} {'PID':>7} {'RESTARTS':>8} {'EVENTS/S':>9}  HEALTH / LAST EXIT")
        for r in table:
            health = r["health"] or "-"
            if r["last_exit"]:
                health += f"  (last exit: {r['last_exit']})"
            rate = "-" if r["rate"] is None else f"{r['rate']:,.1f}"
            print(f"{r['service']:<12} {r['state']:<10} {r['pid'] or '-':>7} {r['restarts']:>8} {rate:>9}  {health}")
    running = [r for r in table if r["state"] == "running"]
    if not running:
        print(f"no stack running from {home / 'run'} (`hyp up --detach` starts one)", file=sys.stderr)
        return 3
    if any(r["state"] in ("failed", "restarting") for r in table):
        return 1
    return 0 if all(r["health"] in (None, "healthy") for r in running) else 1


if __name__ == "__main__":
    raise SystemExit(main())
