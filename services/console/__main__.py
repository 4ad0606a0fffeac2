"""`hyp console`: serve the web console (port 8000)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.common.config import Command
    from services.console.settings import ConsoleSettings


def command() -> Command[ConsoleSettings]:
    from services.common.config import Command
    from services.console.settings import ConsoleSettings

    cli = Command(
        "console",
        ConsoleSettings,
        description="Serve the web console: services, Pub/Sub, detector, anomalies, models, warehouse (live).",
    )
    cli.flag("host", help="address to listen on")
    cli.flag("port", help="port to listen on")
    cli.flag("refresh_s", "--refresh", help="seconds between page updates")
    cli.flag("warehouse_dir", help="warehouse folder for counts and SQL")
    cli.flag(
        "subscribe",
        "--no-subscribe",
        action="store_const",
        const=False,
        help="do not open the console's own Pub/Sub subscriptions",
    )
    return cli


def main(argv: list[str] | None = None) -> int:
    from services.common.config import ConfigError
    from services.common.logs import setup_logging

    cli = command()
    try:
        _, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    setup_logging(settings.log_level)

    from services.common.serve import serve
    from services.console.app import create_app

    try:
        serve(create_app(settings), settings)  # handles SIGTERM/SIGINT: stops accepting, runs the lifespan's shutdown
    except OSError as exc:
        print(f"hyp console: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
