"""`hyp endpoint`: serve the registry's champion on a Vertex-AI-compatible endpoint (port 8080)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.common.config import Command
    from services.endpoint.settings import EndpointSettings


def build_app(settings: EndpointSettings | None = None) -> Any:  # -> FastAPI
    """The endpoint's app for ``settings`` (default: from the environment)."""
    from services.endpoint.app import create_app
    from services.endpoint.model_source import MlflowSource
    from services.endpoint.settings import get_settings

    settings = settings or get_settings()
    return create_app(settings, MlflowSource(settings.mlflow_tracking_uri, settings.model_name, settings.model_alias))


def build_checked_app(settings: EndpointSettings) -> Any:
    """Each worker's app (``--workers`` > 1): build_app behind the Host check (serve() adds it for one).

    The parent hands each worker its validated settings in the factory itself (a pickled
    ``functools.partial``), so workers see the flags without anything written to the environment."""
    from services.common.serve import host_checked

    return host_checked(build_app(settings), settings)


def command() -> Command[EndpointSettings]:
    from services.common.config import Command
    from services.endpoint.settings import EndpointSettings

    cli = Command(
        "endpoint",
        EndpointSettings,
        description="Serve models:/NAME@ALIAS from MLflow over Vertex AI's online-prediction REST contract "
        "(plus MLflow's /invocations), switching versions when the alias moves.",
    )
    cli.flag("host", help="bind address")
    cli.flag("port", help="port")
    cli.flag("mlflow_tracking_uri", help="MLflow server")
    cli.flag("model_name", help="registered model")
    cli.flag("model_alias", help="alias served")
    cli.flag("endpoint_id", help="Vertex endpoint id in the URL")
    cli.flag("reload_interval_s", "--reload-interval", help="seconds between alias checks; 0 = never")
    cli.flag("workers", help="worker processes")
    cli.flag("storage_emulator_host", "--storage-host", help="hyp storage, where gs:// model artifacts are read")
    cli.flag("state_dir", help="folder keeping the endpoints created through Vertex's API across restarts")
    cli.flag("containers", help="custom containers: docker, local (their command as a process) or auto")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    from services.common.config import ConfigError
    from services.common.logs import setup_logging

    cli = command()
    try:
        _, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    setup_logging(settings.log_level)

    import logging

    from services.common.serve import options, serve

    common = options(settings)
    logging.getLogger(__name__).info(
        "uvicorn event loop and HTTP parser", extra={"fields": {k: common[k] for k in ("loop", "http")}}
    )
    if settings.workers > 1:
        serve_workers(settings, common)
    else:
        serve(build_app(settings), settings)
    return 0


def serve_workers(settings: EndpointSettings, common: dict[str, Any]) -> None:
    """``settings.workers`` processes on one socket (what ``uvicorn.run(..., workers=N)`` does, with the app
    factory bound to the parent's settings instead of an import string)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(partial(build_checked_app, settings), factory=True, workers=settings.workers, **common)
    Multiprocess(config, sockets=[config.bind_socket()]).run()


if __name__ == "__main__":
    raise SystemExit(main())
