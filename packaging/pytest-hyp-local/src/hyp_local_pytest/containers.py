"""hyp-local's images under testcontainers: :class:`HypPubSubContainer` with ``PubSubContainer``'s methods,
:class:`HypBigQueryContainer` and :class:`HypStorageContainer` after testcontainers-java's
``BigQueryEmulatorContainer`` (``get_emulator_http_endpoint``, ``get_project_id``) with a ready client.

Importable without testcontainers (the plugin imports it lazily anyway); the classes need
``pytest-hyp-local[containers]``. Unlike Google's emulator image, ``start()`` returns once the emulator
answers (Pub/Sub: its REST side's ``GET /`` says ``Ok.``; the others: ``GET /health``), so the first call
never races the start-up.

>>> with HypPubSubContainer("hyp-local/pubsub:0.1.0") as pubsub:
...     publisher = pubsub.get_publisher_client()
...     publisher.create_topic(name=f"projects/{pubsub.project}/topics/orders")
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from hyp_local_pytest import clients
from hyp_local_pytest.emulators import wait_for

try:
    from testcontainers.core.container import DockerContainer
except ImportError:  # pragma: no cover - exercised where testcontainers is absent
    _MISSING = "testcontainers is not installed (pip install 'pytest-hyp-local[containers]')"

    class DockerContainer:  # type: ignore[no-redef]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ImportError(_MISSING)

else:
    _MISSING = ""

# The address a test reaches a container at is testcontainers' choice (localhost, or the bridge gateway when the
# tests themselves run in a container): the services' Host check (DNS rebinding) is told to take any name.
ANY_HOST = {"HYP_ALLOWED_HOSTS": "*"}
DEFAULT_IMAGE = "hyp-local/pubsub:0.1.0"
APP_IMAGE = "hyp-local/app:0.1.0"  # hyp bigquery and hyp storage (and the rest of the stack)
GRPC_PORT = 8085
REST_PORT = 8086
READY_TIMEOUT_S = 60.0  # generous: a loaded CI runner (or a 2-core box shared by many) starts slowly


def docker_missing() -> str | None:
    """Why containers cannot be used here (no testcontainers, no Docker engine), or None."""
    if _MISSING:
        return _MISSING
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:  # the SDK raises several kinds for "no engine"
        return f"no Docker engine answers ({type(exc).__name__}: {exc})"
    return None


class HypPubSubContainer(DockerContainer):
    """``hyp pubsub`` in a container: no topics at start (as Google's emulator), gRPC on 8085, REST and health
    on 8086, both published on free host ports."""

    def __init__(self, image: str = DEFAULT_IMAGE, project: str = "test-project", **kwargs: Any) -> None:
        super().__init__(image=image, **kwargs)
        self.project = project
        self.port = GRPC_PORT
        self.with_exposed_ports(GRPC_PORT, REST_PORT)
        for name, value in ANY_HOST.items():
            self.with_env(name, value)
        self.with_command(
            f"pubsub --host 0.0.0.0 --port {GRPC_PORT} --rest-port {REST_PORT} --topology none --project {project}"
        )

    def start(self) -> HypPubSubContainer:
        super().start()
        wait_for(self._answers, READY_TIMEOUT_S, f"hyp pubsub in {self.image}", interval=0.05)
        return self

    def _answers(self) -> bool | None:
        url = f"http://{self.get_container_host_ip()}:{self.get_exposed_port(REST_PORT)}/"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                return True if response.read().decode().strip() == "Ok." else None
        except (urllib.error.URLError, OSError):
            return None

    def get_pubsub_emulator_host(self) -> str:
        """What PUBSUB_EMULATOR_HOST would be."""
        return f"{self.get_container_host_ip()}:{self.get_exposed_port(GRPC_PORT)}"

    def get_publisher_client(self, **kwargs: Any) -> Any:  # google.cloud.pubsub_v1.PublisherClient
        return clients.publisher(self.get_pubsub_emulator_host(), **kwargs)

    def get_subscriber_client(self, **kwargs: Any) -> Any:  # google.cloud.pubsub_v1.SubscriberClient
        return clients.subscriber(self.get_pubsub_emulator_host(), **kwargs)


class _HypHttpContainer(DockerContainer):
    """``hyp <service>`` serving HTTP on ``port`` in the app image, ready once ``GET /health`` answers 200."""

    service = ""
    port = 0
    extra_args: tuple[str, ...] = ()

    def __init__(self, image: str = APP_IMAGE, project: str = "test-project", **kwargs: Any) -> None:
        super().__init__(image=image, **kwargs)
        self.project = project
        self.with_exposed_ports(self.port)
        for name, value in {"HYP_PROJECT": project, **ANY_HOST}.items():
            self.with_env(name, value)
        self.with_command(" ".join([self.service, "--host", "0.0.0.0", "--port", str(self.port), *self.extra_args]))

    def start(self) -> _HypHttpContainer:
        super().start()
        wait_for(self._answers, READY_TIMEOUT_S, f"hyp {self.service} in {self.image}", interval=0.05)
        return self

    def _answers(self) -> bool | None:
        try:
            with urllib.request.urlopen(self.get_emulator_http_endpoint() + "/health", timeout=1.0) as response:
                return True if response.status == 200 else None
        except (urllib.error.URLError, OSError):
            return None

    def get_emulator_http_endpoint(self) -> str:
        """What ``*_EMULATOR_HOST`` would be: ``http://HOST:PORT``."""
        return f"http://{self.get_container_host_ip()}:{self.get_exposed_port(self.port)}"

    def get_project_id(self) -> str:
        return self.project


class HypBigQueryContainer(_HypHttpContainer):
    """``hyp bigquery`` (BigQuery's REST API over its own warehouse folder) on 9050."""

    service, port = "bigquery", 9050

    def get_client(self) -> Any:  # google.cloud.bigquery.Client
        return clients.bigquery(self.get_emulator_http_endpoint(), self.project)


class HypStorageContainer(_HypHttpContainer):
    """``hyp storage`` (Cloud Storage's JSON API over a folder of the container) on 4443."""

    service, port = "storage", 4443
    extra_args = ("--data-dir", "/data/storage")

    def get_client(self) -> Any:  # google.cloud.storage.Client
        return clients.storage(self.get_emulator_http_endpoint(), self.project)
