"""`hyp endpoint`: serve the registry's champion on a Vertex-AI-compatible endpoint (port 8080)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError


def build_app():  # -> FastAPI (settings from the environment)
    from services.endpoint.app import create_app
    from services.endpoint.model_source import MlflowSource
    from services.endpoint.settings import get_settings

    settings = get_settings()
    return create_app(settings, MlflowSource(settings.mlflow_tracking_uri, settings.model_name, settings.model_alias))


def build_checked_app():  # uvicorn's factory for each worker: build_app behind the Host check (serve() adds it for one)
    from services.common.serve import host_checked
    from services.endpoint.settings import get_settings

    return host_checked(build_app(), get_settings())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hyp endpoint",
        description="Serve models:/NAME@ALIAS from MLflow over Vertex AI's online-prediction REST contract "
        "(plus MLflow's /invocations), switching versions when the alias moves.",
    )
    parser.add_argument("--host", help="bind address (env HYP_ENDPOINT_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (env AIP_HTTP_PORT or HYP_ENDPOINT_PORT, default 8080)")
    parser.add_argument("--mlflow-tracking-uri", help="MLflow server (env MLFLOW_TRACKING_URI)")
    parser.add_argument("--model-name", help="registered model (env HYP_MODEL_NAME, default purchase-anomaly)")
    parser.add_argument("--model-alias", help="alias served (env HYP_MODEL_ALIAS, default champion)")
    parser.add_argument("--endpoint-id", help="Vertex endpoint id in the URL (env HYP_ENDPOINT_ID, default 1)")
    parser.add_argument("--reload-interval", type=float, help="seconds between alias checks; 0 = never")
    parser.add_argument("--workers", type=int, help="worker processes (env HYP_ENDPOINT_WORKERS, default 1)")
    args = parser.parse_args(argv)

    import os

    from services.common.logs import setup_logging
    from services.endpoint.settings import get_settings

    overrides = {
        "HYP_ENDPOINT_HOST": args.host,
        "AIP_HTTP_PORT": args.port,
        "MLFLOW_TRACKING_URI": args.mlflow_tracking_uri,
        "HYP_MODEL_NAME": args.model_name,
        "HYP_MODEL_ALIAS": args.model_alias,
        "HYP_ENDPOINT_ID": args.endpoint_id,
        "HYP_ENDPOINT_RELOAD_INTERVAL_S": args.reload_interval,
        "HYP_ENDPOINT_WORKERS": args.workers,
    }
    # flags override the environment; worker processes (--workers > 1) read the same variables
    os.environ.update({k: str(v) for k, v in overrides.items() if v is not None})
    get_settings.cache_clear()
    try:
        settings = get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"hyp endpoint: {first['loc'][0] if first['loc'] else 'settings'}: {first['msg']}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)

    import logging

    import uvicorn

    from services.common.serve import options, serve

    common = options(settings)
    logging.getLogger(__name__).info(
        "uvicorn event loop and HTTP parser", extra={"fields": {k: common[k] for k in ("loop", "http")}}
    )
    if settings.workers > 1:
        uvicorn.run("services.endpoint.__main__:build_checked_app", factory=True, workers=settings.workers, **common)
    else:
        serve(build_app(), settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
