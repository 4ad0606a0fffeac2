"""`hyp down`: stop a stack started with `hyp up --detach` (SIGTERM, then SIGKILL after a bound)."""

from __future__ import annotations

import shutil

from services.common.config import Command, ConfigError
from services.stack import processes as p
from services.stack.settings import StackSettings


def command() -> Command[StackSettings]:
    cli = Command("down", StackSettings, description=__doc__.splitlines()[0])
    cli.flag("home", help="data and run directory of the local stack")
    cli.flag("stop_timeout_s", "--timeout", help="seconds to wait after SIGTERM before SIGKILL")
    cli.parser.add_argument(
        "--volumes", "-v", action="store_true", help="also delete the stack's data (warehouse, MLflow)"
    )
    return cli


def main(argv: list[str] | None = None) -> int:
    cli = command()
    try:
        args, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    home, timeout = settings.home.resolve(), settings.stop_timeout_s
    running = p.stop_recorded(home / "run", timeout)
    print("nothing was running" if running == 0 else f"stopped {running} service(s)")
    if args.volumes and home.exists():
        shutil.rmtree(home)
        print(f"deleted {home}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
