"""Serving an ASGI app the one way every hyp HTTP service does: uvicorn, quiet when idle, logs ours.

- uvicorn's own loop ticks once a second instead of ten times (its tick only refreshes the Date
  header, once a second either way, and checks for shutdown): an idle server wakes once a second;
  a stop takes up to one tick longer.
- Request lines only with ``HYP_ACCESS_LOG`` (``CommonSettings.access_log``); uvicorn never
  reconfigures logging (``setup_logging`` did).
- Only requests for one of the service's own names (``Host``): services/common/hosts.py, the
  DNS-rebinding check, wraps every app served here.
- uvloop and httptools where installed (several times asyncio's and h11's speed per request),
  named explicitly so a missing one shows in the log.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

TICK_S = 1.0  # uvicorn's default main loop: 0.1 s

log = logging.getLogger(__name__)


def server_options() -> dict[str, str]:
    """The fastest event loop and HTTP parser installed."""
    from importlib.util import find_spec

    return {
        "loop": "uvloop" if find_spec("uvloop") else "asyncio",
        "http": "httptools" if find_spec("httptools") else "h11",
    }


def options(settings: Any, **overrides: Any) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for a service's settings (host, port, access_log), then ``overrides``."""
    opts: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "access_log": bool(getattr(settings, "access_log", False)),
        "log_config": None,
        **server_options(),
    }
    opts.update(overrides)
    return opts


def quiet_server(config: Any) -> Any:  # uvicorn.Config -> uvicorn.Server
    """A uvicorn server whose main loop ticks every TICK_S seconds."""
    import asyncio

    import uvicorn

    class QuietServer(uvicorn.Server):
        async def main_loop(self) -> None:
            counter = 0
            should_exit = await self.on_tick(counter)
            while not should_exit:
                counter = (counter + 10) % 864000  # on_tick refreshes the Date header when counter % 10 == 0
                await asyncio.sleep(TICK_S)
                should_exit = await self.on_tick(counter)

    return QuietServer(config)


def host_checked(app: Any, settings: Any, bind_host: str | None = None) -> Any:
    """``app`` behind the Host check for a service with these settings (bound to ``bind_host``, by
    default its settings' host)."""
    from services.common import hosts

    allowed = hosts.for_settings(settings, bind_host)
    if hosts.ANY in allowed:
        log.warning(f"{hosts.ENV} has '*': any Host header is accepted (no DNS-rebinding protection)")
    else:
        log.debug("allowed Host names", extra={"fields": {"names": sorted(allowed)}})
    return hosts.protect(app, allowed)


def serve(app: Any, settings: Any, **overrides: Any) -> None:
    """Serve ``app`` (behind the Host check) in this process until SIGTERM/SIGINT (the lifespan's
    shutdown runs). A port that cannot be bound raises OSError before anything starts."""
    import uvicorn

    opts = options(settings, **overrides)
    log.debug("uvicorn options", extra={"fields": {k: v for k, v in opts.items() if k != "log_config"}})
    check_bindable(opts["host"], opts["port"])
    server = quiet_server(uvicorn.Config(host_checked(app, settings, opts["host"]), **opts))
    try:
        server.run()
    except SystemExit:  # uvicorn exits when its own bind fails (a port taken since the check)
        if not server.started:
            raise OSError(f"{opts['host']}:{opts['port']} could not be bound (see the log line above)") from None
        raise


def check_bindable(host: str, port: int) -> None:
    """Bind and release ``host:port`` as uvicorn will (SO_REUSEADDR): OSError (e.g. address in use) if it cannot."""
    import socket

    if not port:
        return
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)


def run_server(cli: Any, argv: Sequence[str] | None, build: Callable[[Any], Any], **overrides: Any) -> int:
    """``main()`` of an HTTP service command: ``cli`` (a services.common.config.Command) reads flags and
    environment (bad input: one line, exit 2), logging is set up, then ``serve(build(settings), settings)``.
    A port that cannot be bound: one line, exit 1."""
    from services.common.config import ConfigError
    from services.common.logs import setup_logging

    try:
        _, settings = cli.parse(argv)
    except ConfigError as exc:
        code: int = cli.fail(exc)
        return code
    setup_logging(settings.log_level)
    return serve_command(cli.name, build(settings), settings, **overrides)


def serve_command(name: str, app: Any, settings: Any, **overrides: Any) -> int:
    """``serve()`` for a command's ``main()``: a port that cannot be bound is one line and exit 1, not a traceback."""
    try:
        serve(app, settings, **overrides)
    except OSError as exc:
        print(f"hyp {name}: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    return 0
