"""Custom containers: a model whose ``containerSpec.imageUri`` is not a prebuilt image is the user's own HTTP
server, started with Vertex's ``AIP_*`` variables and sent each ``:predict`` of its endpoint.

Two runners, one contract (``HYP_ENDPOINT_CONTAINERS``): ``docker`` runs the image (its port published on
127.0.0.1 only, ``command``/``args`` overriding ENTRYPOINT/CMD as Vertex does); ``local`` runs the spec's
``command`` + ``args`` as a process of this machine with the same environment (no Docker needed: the user's
server code must be installed here); ``auto`` (the default) takes Docker when a daemon answers.

A deployment is ready when ``AIP_HEALTH_ROUTE`` answers 200. One that exits or does not get there within
``HYP_ENDPOINT_CONTAINER_START_TIMEOUT_S`` is stopped and the deploy fails naming why, with the end of its log.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from services.endpoint.resources.errors import ApiError, invalid

DEFAULT_PORT = 8080
Problem = Literal["exited", "no-answer", "unhealthy"]  # what a health check found wrong
LOG_TAIL = 2000  # characters of the server's output quoted in a failed deploy


@dataclass(frozen=True)
class Spec:
    """The parts of Vertex's ``ModelContainerSpec`` a deployment needs."""

    image_uri: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    port: int = DEFAULT_PORT  # the first of ``ports`` (Vertex sends every request there)
    predict_route: str = ""
    health_route: str = ""

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Spec:
        ports = spec.get("ports") or []
        port = int(ports[0].get("containerPort") or DEFAULT_PORT) if ports else DEFAULT_PORT
        return cls(
            spec.get("imageUri") or "",
            tuple(spec.get("command") or ()),
            tuple(spec.get("args") or ()),
            tuple((e["name"], str(e.get("value", ""))) for e in spec.get("env") or ()),
            port,
            spec.get("predictRoute") or "",
            spec.get("healthRoute") or "",
        )


@dataclass(frozen=True)
class Placement:
    """Where a deployment lives: what Vertex tells the container about itself."""

    project: str
    endpoint_id: str
    deployed_id: str
    model_id: str
    version: str
    storage_uri: str


def aip_env(spec: Spec, where: Placement, http_port: int | None = None) -> dict[str, str]:
    """Vertex's variables for a custom container, then the spec's own ``env`` (which may use ``$(AIP_...)``);
    ``http_port``: where the server must listen, when not the spec's port (a local process)."""
    base = f"/v1/endpoints/{where.endpoint_id}/deployedModels/{where.deployed_id}"
    env = {
        "AIP_ACCELERATOR_TYPE": "",
        "AIP_DEPLOYED_MODEL_ID": where.deployed_id,
        "AIP_ENDPOINT_ID": where.endpoint_id,
        "AIP_FRAMEWORK": "CUSTOM_CONTAINER",
        "AIP_HEALTH_ROUTE": spec.health_route or base,
        "AIP_HTTP_PORT": str(http_port or spec.port),
        "AIP_MACHINE_TYPE": "local",
        "AIP_MODE": "PREDICTION",
        "AIP_MODE_VERSION": "1.0.0",
        "AIP_MODEL_NAME": where.model_id,
        "AIP_PREDICT_ROUTE": spec.predict_route or base + ":predict",
        "AIP_PROJECT_NUMBER": where.project,
        "AIP_STORAGE_URI": where.storage_uri,
        "AIP_VERSION_NAME": where.version,
    }
    for name, value in spec.env:
        env[name] = expand(value, env)
    return env


def expand(value: str, env: dict[str, str]) -> str:
    """Vertex's ``$(VAR)`` references (Kubernetes' syntax): known names replaced, others left as written."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)


class Runner(Protocol):
    port: int  # where this machine reaches the server

    def alive(self) -> str | None:
        """None while running, else why it is not (exit code)."""

    def log(self) -> str: ...

    def stop(self) -> None: ...


@dataclass
class LocalProcess:
    """The spec's command + args as a process of this machine, in a session of its own."""

    argv: list[str]
    env: dict[str, str]
    port: int
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="hyp-container-", suffix=".log")[1]))
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalProcess:
        with open(self.log_path, "ab") as out:
            try:
                self.process = subprocess.Popen(
                    self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            except OSError as exc:
                raise invalid(f"container command `{self.argv[0]}` cannot be run here: {exc}") from None
        return self

    def alive(self) -> str | None:
        code = self.process.poll() if self.process else None
        return None if code is None else f"exited with code {code}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-LOG_TAIL:] if self.log_path.exists() else ""

    def stop(self) -> None:
        from services.common.processes import stop_group

        if self.process is not None:
            stop_group(self.process)
        self.log_path.unlink(missing_ok=True)


@dataclass
class DockerContainer:
    """``docker run`` of the image, its port published on 127.0.0.1 at ``port``."""

    argv: list[str]
    port: int
    container_id: str = ""

    def start(self) -> DockerContainer:
        done = subprocess.run(self.argv, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise ApiError("FAILED_PRECONDITION", f"docker run failed: {done.stderr.strip()[-LOG_TAIL:]}")
        self.container_id = done.stdout.strip()
        return self

    def alive(self) -> str | None:
        done = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", self.container_id],
            capture_output=True,
            text=True,
            timeout=30,
        )
        running, _, code = done.stdout.strip().partition(" ")
        return None if running == "true" else f"exited with code {code or '?'}"

    def log(self) -> str:
        done = subprocess.run(["docker", "logs", self.container_id], capture_output=True, text=True, timeout=30)
        return (done.stdout + done.stderr)[-LOG_TAIL:]

    def stop(self) -> None:
        if self.container_id:
            subprocess.run(["docker", "rm", "-f", self.container_id], capture_output=True, timeout=60)


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def storage_env(storage_host: str | None, docker: bool) -> dict[str, str]:
    """``STORAGE_EMULATOR_HOST`` for the container's Cloud Storage client (the host as a container sees it)."""
    if not storage_host:
        return {}
    if docker:
        storage_host = re.sub(r"(127\.0\.0\.1|localhost)", "host.docker.internal", storage_host)
    return {"STORAGE_EMULATOR_HOST": storage_host}


def launch(spec: Spec, where: Placement, mode: str, storage_host: str | None) -> Runner:
    """Start the container (``mode``: docker, local or auto); not yet known to be healthy."""
    from services.common.processes import free_port

    docker = mode == "docker" or (mode == "auto" and docker_available())
    host_port = free_port()
    # locally the server listens on a free port of this machine, in Docker on its own port, published
    env = {**aip_env(spec, where, None if docker else host_port), **storage_env(storage_host, docker)}
    command = [expand(a, env) for a in [*spec.command, *spec.args]]
    if docker:
        argv = ["docker", "run", "-d", "--add-host", "host.docker.internal:host-gateway"]
        argv += ["-p", f"127.0.0.1:{host_port}:{spec.port}"]
        for name, value in env.items():
            argv += ["-e", f"{name}={value}"]
        if spec.command:
            argv += ["--entrypoint", command[0]]
            command = command[1:]
        return DockerContainer([*argv, spec.image_uri, *command], host_port).start()
    if not command:
        raise ApiError(
            "FAILED_PRECONDITION",
            f"custom container `{spec.image_uri}`: no Docker here (HYP_ENDPOINT_CONTAINERS={mode}) and the container "
            "spec has no command to run as a local process; give command/args or run with Docker",
        )
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return LocalProcess(command, {**keep, **env}, host_port).start()


@dataclass
class CustomContainer:
    """A started container answering Vertex's predict contract at ``AIP_PREDICT_ROUTE``."""

    runner: Runner
    predict_route: str
    health_route: str
    client: Any = None

    def __post_init__(self) -> None:
        import httpx

        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.runner.port}", timeout=60, trust_env=False)

    def wait_ready(self, timeout: float) -> None:
        """Poll the health route (bounded) until 200; FAILED_PRECONDITION naming why it never got there."""
        import httpx

        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            dead = self.runner.alive()
            if dead is not None:
                self.fail(f"the model server {dead}")
            try:
                r = self.client.get(self.health_route, timeout=5)
                if r.status_code == 200:
                    return
                last = f"{self.health_route} answered {r.status_code}"
            except httpx.HTTPError as exc:
                last = f"{self.health_route}: {type(exc).__name__}"
            time.sleep(0.2)  # the poll's interval, under the deadline above
        self.fail(f"the model server was not healthy within {timeout:g} s ({last})")

    def check(self, timeout: float = 5.0) -> tuple[str | None, Problem | None]:
        """Why the server is not serving (None when its health route answers 200 within ``timeout``) and what
        kind of problem: ``exited``, ``no-answer`` (alive, its health route timed out or refused the
        connection: hung, or not listening) or ``unhealthy`` (it answered something but 200)."""
        import httpx

        dead = self.runner.alive()
        if dead is not None:
            return f"the model server {dead}", "exited"
        try:
            r = self.client.get(self.health_route, timeout=timeout)
        except httpx.HTTPError as exc:
            return f"{self.health_route} did not answer within {timeout:g} s ({type(exc).__name__})", "no-answer"
        if r.status_code == 200:
            return None, None
        return f"{self.health_route} answered {r.status_code}", "unhealthy"

    def fail(self, why: str) -> None:
        log = self.runner.log().strip()
        raise ApiError(
            "FAILED_PRECONDITION",
            f"Model server never became ready: {why}." + (f" Its last output:\n{log}" if log else ""),
        )

    def predict_json(self, instances: Sequence[Any]) -> bytes:
        import httpx

        try:
            r = self.client.post(
                self.predict_route, content=orjson.dumps({"instances": list(instances)}), headers=JSON_HEADERS
            )
        except httpx.HTTPError as exc:
            raise ApiError("UNAVAILABLE", f"the model server did not answer: {type(exc).__name__}: {exc}") from None
        if r.status_code != 200:
            code = "INVALID_ARGUMENT" if 400 <= r.status_code < 500 else "INTERNAL"
            raise ApiError(code, f"the model server answered {r.status_code}: {r.text[:LOG_TAIL]}")
        try:
            body = orjson.loads(r.content)
            return orjson.dumps(body["predictions"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise ApiError("INTERNAL", f"the model server's answer has no predictions: {r.text[:200]}") from None

    def close(self) -> None:
        self.client.close()
        self.runner.stop()


JSON_HEADERS = {"content-type": "application/json"}


def start(spec: Spec, where: Placement, mode: str, storage_host: str | None, timeout: float) -> CustomContainer:
    """Launch and wait until healthy; on failure nothing is left running."""
    runner = launch(spec, where, mode, storage_host)
    env = aip_env(spec, where)
    served = CustomContainer(runner, env["AIP_PREDICT_ROUTE"], env["AIP_HEALTH_ROUTE"])
    try:
        served.wait_ready(timeout)
    except BaseException:
        served.close()
        raise
    return served
