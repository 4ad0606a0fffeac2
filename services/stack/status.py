"""`hyp status`: each service of the local stack: running or not, healthy or not, restarts and last exit."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from services.common.config import Command, ConfigError
from services.stack import definition as d
from services.stack import processes as p
from services.stack import supervise as sup
from services.stack.healthcheck import probe
from services.stack.settings import StackSettings


def rows(home: Path, port_offset: int = 0) -> list[dict[str, Any]]:
    """One row per service; the ports' offset is the running stack's own (stack.json), else ``port_offset``."""
    pids = p.recorded(home / "run")
    offset = int(p.read_state(home / "run").get("port_offset", port_offset))
    supervised = sup.read(home / "run") if pids else {}  # a state file left by a stopped stack means nothing
    out = []
    for s in d.SERVICES:
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
    if args.json:
        for row in table:
            print(json.dumps(row))
    else:
        print(f"{'SERVICE':<12} {'STATE':<10} {'PID':>7} {'RESTARTS':>8}  HEALTH / LAST EXIT")
        for r in table:
            health = r["health"] or "-"
            if r["last_exit"]:
                health += f"  (last exit: {r['last_exit']})"
            print(f"{r['service']:<12} {r['state']:<10} {r['pid'] or '-':>7} {r['restarts']:>8}  {health}")
    running = [r for r in table if r["state"] == "running"]
    if not running:
        print(f"no stack running from {home / 'run'} (`hyp up --detach` starts one)", file=sys.stderr)
        return 3
    if any(r["state"] in ("failed", "restarting") for r in table):
        return 1
    return 0 if all(r["health"] in (None, "healthy") for r in running) else 1


if __name__ == "__main__":
    raise SystemExit(main())
