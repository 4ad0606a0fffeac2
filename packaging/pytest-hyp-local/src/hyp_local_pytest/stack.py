"""The whole hyp-local stack through Docker Compose, from the installed ``hyp`` alone (no checkout).

``hyp images compose`` says where the installed wheel's compose file is, which ports each service has and
which services a test stack needs; :class:`HypStack` publishes every port on a free 127.0.0.1 port (a compose
override, so a stack on the default ports, or another test run's, is left alone), runs
``docker compose up --wait --no-build --pull never SERVICES`` (the images come from ``hyp images build`` or
``hyp images load``) and hands out Google's clients pointed at it. SERVICES are ``services`` if given, else
the test services ``hyp images compose`` names (no load generator, orchestrator or console), ``[]`` for all.
``stop()`` is ``docker compose down --volumes`` (every service of the project).

>>> with HypStack(find_hyp(), Path("/tmp/work")) as stack:
...     stack.publisher_client().publish(stack.topic_path("hyp-pubsub-topic"), b"{}").result()
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hyp_local_pytest import clients

START_TIMEOUT_S = 600.0


def compose_missing() -> str | None:
    """Why the stack cannot start here (no docker CLI, no compose plugin, no engine), or None."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    for argv, what in ((["docker", "compose", "version"], "docker compose"), (["docker", "info"], "a Docker engine")):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{what} does not answer ({exc})"
        if done.returncode != 0:
            return f"{what} does not answer: {done.stderr.strip()[-300:]}"
    return None


def port_override(ports: dict[str, list[int]]) -> str:
    """A compose override publishing each service's ports on free host ports of 127.0.0.1."""
    lines = ["services:"]
    for service, numbers in ports.items():
        lines += [f"  {service}:", "    ports: !override"]
        lines += [f'      - "127.0.0.1::{port}"' for port in numbers]
    return "\n".join(lines) + "\n"


def services_to_start(given: Sequence[str] | None, info: dict[str, Any]) -> list[str]:
    """What ``up`` names: ``given`` (``[]``: every service), else the test services ``hyp images compose`` lists
    (an older ``hyp`` lists none: every service)."""
    return list(given) if given is not None else [str(s) for s in info.get("test_services", [])]


def parse_services(text: str) -> list[str] | None:
    """The ini value ``hyp_local_stack_services``: empty -> None (the test services), ``all`` -> ``[]``."""
    named = text.replace(",", " ").split()
    return None if not named else [] if named == ["all"] else named


class HypStack:
    """The stack's services in containers on free ports; addresses and Google's clients for them."""

    def __init__(
        self,
        hyp: Sequence[str],
        workdir: Path,
        *,
        name: str | None = None,
        timeout: float = START_TIMEOUT_S,
        services: Sequence[str] | None = None,
    ) -> None:
        self.hyp, self.workdir, self.timeout = list(hyp), workdir, timeout
        self.services = None if services is None else list(services)
        self.name = name or f"hyp-test-{uuid.uuid4().hex[:8]}"
        self.info: dict[str, Any] = {}
        self._published: dict[tuple[str, int], int] = {}
        self._compose: list[str] = []

    @property
    def project(self) -> str:
        """The stack's GCP project (its topics, subscriptions and the workshop dataset live there)."""
        return str(self.info.get("project", "hyp-local"))

    def _run(self, *args: str, timeout: float = 120.0) -> str:
        done = subprocess.run([*self._compose, *args], capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} -> {done.returncode}:\n{done.stderr[-4000:]}")
        return done.stdout

    def start(self) -> HypStack:
        done = subprocess.run([*self.hyp, "images", "compose"], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"`hyp images compose` -> {done.returncode}: {done.stderr.strip()}")
        self.info = json.loads(done.stdout)
        self.workdir.mkdir(parents=True, exist_ok=True)
        override = self.workdir / f"{self.name}.ports.yml"
        override.write_text(port_override(self.info["ports"]))
        self._compose = ["docker", "compose", "-p", self.name, "-f", self.info["compose_file"], "-f", str(override)]
        services = services_to_start(self.services, self.info)
        try:
            self._run("up", "--wait", "--no-build", "--pull", "never", "--quiet-pull", *services, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            states = self._states()
            self.stop()
            raise TimeoutError(f"the stack was not ready after {self.timeout:.0f} s: {states}") from None
        except BaseException:
            self.stop()
            raise
        return self

    def _states(self) -> str:
        """Each container's state and health, for a start-up that timed out."""
        try:
            return self._run("ps", "--all", "--format", "{{.Service}}: {{.Status}}", timeout=30).replace("\n", "; ")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            return f"(docker compose ps failed: {exc})"

    def stop(self) -> None:
        if self._compose:
            subprocess.run([*self._compose, "down", "--volumes", "--remove-orphans"], capture_output=True, timeout=180)

    def __enter__(self) -> HypStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses
    def port(self, service: str, port: int | None = None) -> int:
        """The host port ``service``'s container ``port`` (default: its first) is published on."""
        port = port if port is not None else int(self.info["ports"][service][0])
        if (service, port) not in self._published:
            out = self._run("port", service, str(port)).strip()
            self._published[(service, port)] = int(out.rsplit(":", 1)[1])
        return self._published[(service, port)]

    def url(self, service: str, port: int | None = None) -> str:
        return f"http://127.0.0.1:{self.port(service, port)}"

    @property
    def pubsub_emulator_host(self) -> str:
        return f"127.0.0.1:{self.port('pubsub')}"

    def env(self) -> dict[str, str]:
        """The variables Google's clients read for each emulator of this stack."""
        return {
            "PUBSUB_EMULATOR_HOST": self.pubsub_emulator_host,
            "PUBSUB_PROJECT_ID": self.project,
            "BIGQUERY_EMULATOR_HOST": self.url("bigquery"),
            "STORAGE_EMULATOR_HOST": self.url("storage"),
            "GOOGLE_CLOUD_PROJECT": self.project,
        }

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def subscription_path(self, subscription: str) -> str:
        return f"projects/{self.project}/subscriptions/{subscription}"

    # clients
    def publisher_client(self, **kwargs: Any) -> Any:
        return clients.publisher(self.pubsub_emulator_host, **kwargs)

    def subscriber_client(self, **kwargs: Any) -> Any:
        return clients.subscriber(self.pubsub_emulator_host, **kwargs)

    def bigquery_client(self) -> Any:
        return clients.bigquery(self.url("bigquery"), self.project)

    def storage_client(self) -> Any:
        return clients.storage(self.url("storage"), self.project)

    def vertex_endpoint(self, endpoint_id: str = "1") -> Any:
        """google-cloud-aiplatform's ``Endpoint`` on the stack's Vertex-compatible endpoint (``:predict``)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import aiplatform

        location = str(self.info.get("location", "europe-west1"))
        aiplatform.init(project=self.project, location=location, api_endpoint=self.url("endpoint"),
                        api_transport="rest", credentials=AnonymousCredentials())  # fmt: skip
        return aiplatform.Endpoint(f"projects/{self.project}/locations/{location}/endpoints/{endpoint_id}")
