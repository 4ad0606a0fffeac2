"""`hyp status`: each service of the local stack: running or not, healthy or not, its URL."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from services.common.config import Command, ConfigError
from services.stack import definition as d
from services.stack import processes as p
from services.stack.healthcheck import probe
from services.stack.settings import StackSettings


def rows(home: Path) -> list[dict[str, Any]]:
    pids = p.recorded(home / "run")
    out = []
    for s in d.SERVICES:
        if s.oneshot:
            continue
        pid, started = pids.get(s.name, (None, None))
        alive = pid is not None and p.pid_alive(pid, started)
        health = None
        if alive and s.health is not None:
            health = probe(s.health.url(), s.health.expect, timeout=1.0) or "healthy"
        out.append(
            {
                "service": s.name,
                "pid": pid if alive else None,
                "state": "running" if alive else ("exited" if pid else "stopped"),
                "health": health if alive else None,
                "url": s.health.url() if s.health else None,
            }
        )
    return out


def command() -> Command[StackSettings]:
    cli = Command("status", StackSettings, description=__doc__.splitlines()[0])
    cli.flag("home", help="data and run directory of the local stack")
    cli.parser.add_argument("--json", action="store_true", help="one JSON object per service")
    return cli


def main(argv: list[str] | None = None) -> int:
    cli = command()
    try:
        args, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    home = settings.home.resolve()
    table = rows(home)
    if args.json:
        for row in table:
            print(json.dumps(row))
    else:
        print(f"{'SERVICE':<10} {'STATE':<8} {'PID':>7}  HEALTH")
        for r in table:
            health = r["health"] or "-"
            print(f"{r['service']:<10} {r['state']:<8} {r['pid'] or '-':>7}  {health}")
    running = [r for r in table if r["state"] == "running"]
    if not running:
        print(f"no stack running from {home / 'run'} (`hyp up --detach` starts one)", file=sys.stderr)
        return 3
    return 0 if all(r["health"] in (None, "healthy") for r in running) else 1


if __name__ == "__main__":
    raise SystemExit(main())
