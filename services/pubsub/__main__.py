"""`hyp pubsub`: run the Pub/Sub emulator (gRPC google.pubsub.v1 + REST)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from services.common.logs import setup_logging


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hyp pubsub",
        description="Pub/Sub emulator: gRPC google.pubsub.v1 on --port, REST, `GET /` health and /metrics on "
        "--rest-port (default port + 1). Settings come from HYP_PUBSUB_* variables; flags override.",
    )
    p.add_argument("--host", help="address to bind (HYP_PUBSUB_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="gRPC port (HYP_PUBSUB_PORT, default 8085; 0 picks a free one)")
    p.add_argument("--rest-port", type=int, help="REST, health, /metrics (HYP_PUBSUB_REST_PORT, default port+1)")
    p.add_argument("--topology", help="YAML topology file, or 'none' (HYP_PUBSUB_TOPOLOGY, default: the stack's)")
    p.add_argument("--data-dir", type=Path, help="keep messages durably here (HYP_PUBSUB_DATA_DIR; default memory)")
    p.add_argument("--project", help="default project for short names in the topology (HYP_PROJECT)")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING (HYP_LOG_LEVEL)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from services.pubsub.settings import PubsubSettings, get_settings

    overrides = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "rest_port": args.rest_port,
            "topology": args.topology,
            "data_dir": args.data_dir,
            "project": args.project,
            "log_level": args.log_level,
        }.items()
        if v is not None
    }
    try:
        if overrides:  # flags override the environment: pass them by their variable names
            fields = PubsubSettings.model_fields
            settings = PubsubSettings(**{str(fields[k].validation_alias): v for k, v in overrides.items()})
        else:
            settings = get_settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        print(f"hyp pubsub: invalid setting {'.'.join(map(str, err['loc']))}: {err['msg']}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    import logging

    # httpx logs every push request at INFO ("HTTP Request: POST ..."): per-request lines only at DEBUG
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)

    from services.pubsub.server import Emulator
    from services.pubsub.topology import TopologyError

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
