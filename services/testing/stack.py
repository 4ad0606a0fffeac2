"""The hyp-local compose stack under testcontainers, with clients that point at it.

Every published port is remapped to a free one on 127.0.0.1 (a generated override file, so a local
``hyp up`` or another test run on the default ports is no obstacle), the compose project gets its own
name, and ``docker compose down --volumes`` removes everything afterwards. Clients never touch
``os.environ``: they get the emulator host and URLs explicitly.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from functools import cached_property
from pathlib import Path
from typing import Any

from testcontainers.compose import DockerCompose

from services.stack import definition as d
from services.stack.up import select
from services.testing.addresses import StackAddresses
from services.testing.lifecycle import Started

ROOT = Path(__file__).resolve().parents[2]


# what HypStack.sql runs in a container: the warehouse's own query function (HYP_WAREHOUSE_DIR is set there)
_SQL_IN_CONTAINER = """
import json, os, sys
from services.warehouse.query import query
for row in query(os.environ["HYP_WAREHOUSE_DIR"], sys.argv[1], read_only=True).to_pylist():
    print(json.dumps(row, default=str))
"""


class _Compose(DockerCompose):
    """DockerCompose with its own project name (``-p``)."""

    project: str = "hyp-test"

    @cached_property
    def compose_command_property(self) -> list[str]:
        cmd = super().compose_command_property
        return [*cmd[:2], "-p", self.project, *cmd[2:]]


def port_override(services: list[str]) -> str:
    """A compose override that publishes each service's ports on free host ports of 127.0.0.1."""
    lines = ["services:"]
    for s in d.SERVICES:
        if s.name in services and s.ports:
            lines.append(f"  {s.name}:")
            lines.append("    ports: !override")
            lines += [f'      - "127.0.0.1::{p}"' for p in s.ports]
    return "\n".join(lines) + "\n"


class HypStack(StackAddresses, Started):
    """Start ``services`` (and what they depend on) with ``docker compose up --wait``; stop with ``down -v``.

    >>> with HypStack(["pubsub"]) as stack:
    ...     stack.publisher().publish(stack.topic("hyp-pubsub-topic"), b"{}").result()
    >>> with HypStack(["bigquery", "storage"]) as stack:
    ...     stack.bigquery_client().query("SELECT 1").result(); stack.storage_client().create_bucket("b")
    """

    def __init__(
        self,
        services: list[str] | None = None,
        *,
        root: Path = ROOT,
        compose_files: tuple[str, ...] = ("docker-compose.yml",),
        project: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        unknown = sorted(set(services or []) - set(d.SERVICE_NAMES))
        if unknown:
            raise ValueError(f"unknown service(s) {', '.join(unknown)} (services: {', '.join(d.SERVICE_NAMES)})")
        self.services = list(services or [s.name for s in d.SERVICES])
        self.root = root
        self._tmp = tempfile.TemporaryDirectory(prefix="hyp-stack-")
        override = Path(self._tmp.name) / "ports.override.yml"
        override.write_text(port_override(self._closure(self.services)))
        env_file = None
        if env:
            env_file = str(Path(self._tmp.name) / "test.env")
            Path(env_file).write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        self.compose = _Compose(
            context=str(root),
            compose_file_name=[*(str(root / f) for f in compose_files), str(override)],
            services=self.services,
            wait=True,
            env_file=[str(root / ".env"), env_file] if env_file else None,
        )
        self.compose.project = project or f"hyp-test-{uuid.uuid4().hex[:8]}"
        self.project = d.TUNABLES["HYP_PROJECT"] if not env else env.get("HYP_PROJECT", d.TUNABLES["HYP_PROJECT"])

    @staticmethod
    def _closure(services: list[str]) -> list[str]:
        """``services`` and everything they depend on (what ``hyp up --services`` would start)."""
        return sorted(s.name for s in select(services, []))

    # lifecycle
    def start(self) -> HypStack:
        self.compose.start()
        return self

    def stop(self) -> None:
        try:
            # `down` of the whole project: with service names it would leave their dependencies and volumes behind
            self.compose.services = None
            self.compose.stop(down=True)
        finally:
            self._tmp.cleanup()

    # addresses
    def port(self, service: str, port: int) -> int:
        published = self.compose.get_service_port(service, port)
        if published is None:
            raise RuntimeError(f"{service}:{port} is not published")
        return int(published)

    # the warehouse lives in a named volume: query it inside a container that mounts it
    def sql(self, query: str, service: str = "detector") -> list[dict[str, Any]]:
        """DuckDB SQL over the warehouse's own tables and columns (read-only, confined), run in ``service``'s
        container; for BigQuery SQL over the workshop's dataset use ``bigquery_client()``."""
        out, err, code = self.compose.exec_in_container(["python", "-c", _SQL_IN_CONTAINER, query], service)
        if code != 0:
            raise RuntimeError(f"warehouse query failed in {service}: {err.strip() or out.strip()}")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def logs(self, *services: str) -> str:
        out, err = self.compose.get_logs(*services)
        return out + err
