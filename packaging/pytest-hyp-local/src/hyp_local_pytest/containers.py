"""hyp-local's Pub/Sub emulator image under testcontainers, with ``PubSubContainer``'s methods.

Importable without testcontainers (the plugin imports it lazily anyway); the class needs
``pytest-hyp-local[containers]``. Unlike Google's emulator image, ``start()`` returns once the emulator
answers (its REST side's ``GET /`` says ``Ok.``), so the first publish never races the start-up.

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

DEFAULT_IMAGE = "hyp-local/pubsub:0.1.0"
GRPC_PORT = 8085
REST_PORT = 8086
READY_TIMEOUT_S = 30.0


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
