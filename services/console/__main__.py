"""`hyp console`: serve the web console (port 8000)."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hyp console",
        description="Serve the web console: services, Pub/Sub, detector, anomalies, models, warehouse (live).",
    )
    parser.add_argument("--host", help="address to listen on (HYP_CONSOLE_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (HYP_CONSOLE_PORT, default 8000)")
    parser.add_argument("--refresh", type=float, help="seconds between page updates (HYP_CONSOLE_REFRESH_S)")
    parser.add_argument("--warehouse-dir", help="warehouse folder for counts and SQL (HYP_WAREHOUSE_DIR)")
    parser.add_argument(
        "--no-subscribe", action="store_true", help="do not open the console's own Pub/Sub subscriptions"
    )
    args = parser.parse_args(argv)

    from services.common.logs import setup_logging
    from services.console.settings import get_settings

    try:
        settings = get_settings()
        overrides = {
            k: v
            for k, v in {
                "host": args.host,
                "port": args.port,
                "refresh_s": args.refresh,
                "warehouse_dir": args.warehouse_dir,
            }.items()
            if v is not None
        }
        if args.no_subscribe:
            overrides["subscribe"] = False
        if overrides:
            fields = type(settings).model_fields
            current = {f.validation_alias: getattr(settings, n) for n, f in fields.items()}
            current.update({fields[n].validation_alias: v for n, v in overrides.items()})
            settings = type(settings).model_validate(current)
    except ValidationError as exc:
        err = exc.errors()[0]
        print(f"hyp console: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}", file=sys.stderr)
        return 2
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
