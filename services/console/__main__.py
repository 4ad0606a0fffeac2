"""`hyp console`: serve the web console (port 8000)."""

from __future__ import annotations

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
    from services.common.serve import run_server
    from services.console.app import create_app

    return run_server(command(), argv, create_app)


if __name__ == "__main__":
    raise SystemExit(main())
