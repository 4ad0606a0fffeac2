"""`hyp processor`: the Cloud-Run-style inference processing service (Pub/Sub push target, port 8081)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.common.config import Command
    from services.processor.settings import ProcessorSettings


def command() -> Command[ProcessorSettings]:
    from services.common.config import Command
    from services.processor.settings import ProcessorSettings

    cli = Command(
        "processor",
        ProcessorSettings,
        description="Receive Pub/Sub pushes of purchase events, score purchases on the Vertex-AI-compatible "
        "endpoint and write the cloud_run and cloud_run_anomaly warehouse tables.",
    )
    cli.flag("host", help="bind address")
    cli.flag("port", help="port")
    cli.flag("endpoint_url", help="the endpoint's base URL")
    cli.flag("endpoint_timeout_s", "--endpoint-timeout", help="seconds before the endpoint counts as down")
    cli.flag("warehouse_dir", help="warehouse folder")
    cli.flag("deadletter_topic", help="topic for unusable events; '' to answer 400 instead")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    from services.common.serve import run_server

    # the push's client address is not used: no per-request proxy-header pass
    return run_server(command(), argv, front, proxy_headers=False)


def front(settings: ProcessorSettings) -> Any:
    """The app's front: POST / straight to the processor, everything else (and the lifespan) to FastAPI."""
    from services.processor.app import create_app

    return create_app(settings).state.front


if __name__ == "__main__":
    raise SystemExit(main())
