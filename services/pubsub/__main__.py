"""`hyp pubsub`: run the Pub/Sub emulator (gRPC google.pubsub.v1 + REST)."""

from __future__ import annotations

import signal
import sys

from services.common.config import Command, ConfigError
from services.common.logs import setup_logging
from services.pubsub.settings import PubsubSettings


def command() -> Command[PubsubSettings]:
    cli = Command(
        "pubsub",
        PubsubSettings,
        description="Pub/Sub emulator: gRPC google.pubsub.v1 on --port, REST, `GET /` health and /metrics on "
        "--rest-port (default port + 1). Settings come from HYP_PUBSUB_* variables; flags override.",
    )
    cli.flag("host", help="address to bind")
    cli.flag("port", help="gRPC port (0 picks a free one)")
    cli.flag("rest_port", help="REST, health, /metrics (unset: port + 1)")
    cli.flag("topology", help="YAML topology file, or 'none' (default: the stack's)")
    cli.flag("data_dir", help="keep messages durably here (unset: memory)")
    cli.flag("memory_budget_mb", help="without --data-dir: RESOURCE_EXHAUSTED on publish past this backlog (MiB)")
    cli.flag("project", help="default project for short names in the topology")
    cli.flag("log_level", help="DEBUG, INFO, WARNING")
    return cli


def main(argv: list[str] | None = None) -> int:
    cli = command()
    try:
        _, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    setup_logging(settings.log_level)
    import logging

    # httpx logs every push request at INFO ("HTTP Request: POST ..."): per-request lines only at DEBUG
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)

    from services.pubsub.errors import TopologyError
    from services.pubsub.server import Emulator

    emulator = Emulator(settings)
    try:
        emulator.start()
    except TopologyError as exc:
        print(f"hyp pubsub: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:
        print(f"hyp pubsub: cannot start: {exc}", file=sys.stderr)
        emulator.stop()
        return 1
    signal.signal(signal.SIGTERM, lambda *_: emulator.request_stop())
    signal.signal(signal.SIGINT, lambda *_: emulator.request_stop())
    emulator.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
