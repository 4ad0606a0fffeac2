"""`hyp processor`: the Cloud-Run-style inference processing service (Pub/Sub push target, port 8081)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hyp processor",
        description="Receive Pub/Sub pushes of purchase events, score purchases on the Vertex-AI-compatible "
        "endpoint and write the cloud_run and cloud_run_anomaly warehouse tables.",
    )
    parser.add_argument("--host", help="bind address (env HYP_PROCESSOR_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (env HYP_PROCESSOR_PORT, default 8081)")
    parser.add_argument("--endpoint-url", help="the endpoint's base URL (env HYP_ENDPOINT_URL)")
    parser.add_argument("--endpoint-timeout", type=float, help="seconds before the endpoint counts as down")
    parser.add_argument("--warehouse-dir", help="warehouse folder (env HYP_WAREHOUSE_DIR)")
    parser.add_argument("--deadletter-topic", help="topic for unusable events; '' to answer 400 instead")
    args = parser.parse_args(argv)

    from services.common.logs import setup_logging
    from services.processor.settings import get_settings

    overrides = {
        "HYP_PROCESSOR_HOST": args.host,
        "HYP_PROCESSOR_PORT": args.port,
        "HYP_ENDPOINT_URL": args.endpoint_url,
        "HYP_PROCESSOR_ENDPOINT_TIMEOUT_S": args.endpoint_timeout,
        "HYP_WAREHOUSE_DIR": args.warehouse_dir,
        "HYP_PROCESSOR_DEADLETTER_TOPIC": args.deadletter_topic,
    }
    os.environ.update({k: str(v) for k, v in overrides.items() if v is not None})  # flags override the env
    get_settings.cache_clear()
    try:
        settings = get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"hyp processor: {first['loc'][0] if first['loc'] else 'settings'}: {first['msg']}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)

    from services.common.serve import serve
    from services.processor.app import create_app

    app = create_app(settings)
    # app.state.front: POST / straight to the processor, everything else (and the lifespan) to FastAPI;
    # the push's client address is not used: no per-request proxy-header pass
    serve(app.state.front, settings, proxy_headers=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
