"""The one definition of the stack: every service's command, settings, ports, health check and dependencies.

Both ways of running the stack follow it: ``hyp up`` starts these services as local processes and
``python -m services.stack.compose_gen`` writes ``docker-compose.yml`` and ``.env`` from it (a fast test
keeps the committed files equal to what the generator writes). Changing a port or a variable here changes
both.

Values may hold placeholders, filled in by :func:`resolve` for the place the service runs in:

``{bind}``
    the address a server listens on (``127.0.0.1`` locally, ``0.0.0.0`` in a container)
``{data}``
    the data root (``.hyp`` in the working directory locally, ``/data`` in a container)
``{pubsub}``, ``{mlflow}``, ``{endpoint}``, ... (any service name)
    the host that service is reached at (``127.0.0.1`` locally, the compose service name in compose)
``{self}``
    the same for the service whose value it is (its own name in compose)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

VERSION = "0.1.0"

# Ports: written once, used by the commands, the health checks and the published ports.
PUBSUB_PORT = 8085  # gRPC
PUBSUB_REST_PORT = 8086  # REST, `GET /` health ("Ok."), /metrics
MLFLOW_PORT = 5000
ENDPOINT_PORT = 8080
PROCESSOR_PORT = 8081
DETECTOR_METRICS_PORT = 9464
CONSOLE_PORT = 8000
ORCHESTRATOR_PORT = 8090
BIGQUERY_PORT = 9050  # the port the community BigQuery emulator uses
BIGQUERY_READ_PORT = BIGQUERY_PORT + 1  # the Storage Read API (gRPC) of `hyp bigquery`: its default, REST port + 1
STORAGE_PORT = 4443  # the port fake-gcs-server uses


@dataclass(frozen=True)
class Image:
    """One build of compose/Dockerfile: which pyproject extras it installs on which base image."""

    key: str
    extras: str  # comma-separated pyproject extras, "" for the base dependencies only
    description: str

    @property
    def tag(self) -> str:
        return f"hyp-local/{self.key}:{VERSION}"


IMAGES: dict[str, Image] = {
    i.key: i
    for i in (
        Image("pubsub", "", "the Pub/Sub emulator: base dependencies only, small"),
        Image("app", "warehouse,serve,models,beam", "MLflow, training, detector, endpoint, processor (no TensorFlow)"),
        Image("app-postgres", "warehouse,serve,models,postgres", "MLflow with the PostgreSQL driver"),
        Image("app-gpu", "warehouse,serve,models,beam,tf", "the TensorFlow services on a CUDA base (GPU overlay)"),
    )
}


@dataclass(frozen=True)
class Health:
    """How to tell a service is ready: an HTTP GET answering 2xx (with ``expect`` in the body, if given)."""

    port: int
    path: str = "/"
    expect: str | None = None
    interval_s: float = 2.0
    retries: int = 30
    start_period_s: float = 5.0

    def url(self, host: str = "127.0.0.1", port_offset: int = 0) -> str:
        return f"http://{host}:{self.port + port_offset}{self.path}"

    def probe_args(self, host: str = "127.0.0.1") -> list[str]:
        """Arguments of ``python -m services.stack.healthcheck`` for this check."""
        args = [self.url(host)]
        if self.expect is not None:
            args += ["--expect", self.expect]
        return args


@dataclass(frozen=True)
class Service:
    """One service of the stack, run as ``hyp <command...>`` in both worlds."""

    name: str
    command: tuple[str, ...]  # arguments of `hyp`; the first one is the sub-command
    image: str  # key of IMAGES
    summary: str
    env: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[int, ...] = ()
    health: Health | None = None
    depends_on: tuple[str, ...] = ()  # must be healthy (or, for one-shot jobs, completed) first
    oneshot: bool = False  # a job that runs to completion (exit 0) before its dependants start
    # one-shot jobs only: a probe that, when it passes, means the job has nothing to do; `hyp up` then
    # skips starting it (compose always runs the job, which is idempotent)
    done_if: Health | None = None
    volumes: Mapping[str, str] = field(default_factory=dict)  # named volume -> mount path in the container
    urls: Mapping[str, str] = field(default_factory=dict)  # label -> URL shown by `hyp up` (placeholders ok)
    memory: str | None = None  # compose memory limit
    stop_grace_s: int = 10
    gpu: bool = False  # uses TensorFlow: docker-compose.gpu.yml rebuilds it on a CUDA base with a GPU reserved
    # off the data path (console, orchestrator): started at a lower CPU priority, so on a small machine the
    # emulator, MLflow and the detector get the cores first (`hyp up`: nice 10; compose: cpu_shares)
    background: bool = False
    # compose runs this many replicas of it (a tunable's name; services/stack/compose_gen.py), `hyp up` as many
    # processes (StackSettings.detector_workers, the same variable): the detector's workers
    replicas_env: str | None = None

    @property
    def subcommand(self) -> str:
        return self.command[0]


# The GPU overlay: the CUDA base image (a build argument; Ubuntu 22.04 gets Python 3.11 from apt).
CUDA_BASE_IMAGE = "nvidia/cuda:12.5.1-cudnn-runtime-ubuntu22.04"
GPU_IMAGE = "app-gpu"
GPU_MEMORY = "6g"

# Settings the user may change; compose reads them as ${NAME:-default} and .env lists the defaults.
TUNABLES: dict[str, str] = {
    "HYP_PROJECT": "hyp-local",
    "HYP_LOCATION": "europe-west1",
    "HYP_MODEL_NAME": "purchase-anomaly",
    "HYP_MODEL_ALIAS": "champion",
    "HYP_LOG_LEVEL": "INFO",
    "HYP_ACCESS_LOG": "false",  # uvicorn's line per HTTP request (CommonSettings.access_log): debugging only
    "HYP_ALLOWED_HOSTS": "",  # more Host names every HTTP service answers to (services/common/hosts.py)
    "HYP_LOADGEN_RATE": "200",
    "HYP_DETECTOR_WORKERS": "1",  # detector processes on its one subscription (compose replicas, hyp up workers)
    "BASE_IMAGE": "python:3.11-slim",
    "CUDA_BASE_IMAGE": CUDA_BASE_IMAGE,
}

# Every service gets these (all are CommonSettings names).
COMMON_ENV: dict[str, str] = {
    "HYP_PROJECT": "${HYP_PROJECT}",
    "HYP_LOCATION": "${HYP_LOCATION}",
    "HYP_MODEL_NAME": "${HYP_MODEL_NAME}",
    "HYP_MODEL_ALIAS": "${HYP_MODEL_ALIAS}",
    "HYP_LOG_LEVEL": "${HYP_LOG_LEVEL}",
    "HYP_ACCESS_LOG": "${HYP_ACCESS_LOG}",
    # the Host check (DNS rebinding) lets a service answer to the name the others reach it at
    "HYP_ALLOWED_HOSTS": "{self},${HYP_ALLOWED_HOSTS}",
    "PUBSUB_EMULATOR_HOST": "{pubsub}:" + str(PUBSUB_PORT),
    "MLFLOW_TRACKING_URI": "http://{mlflow}:" + str(MLFLOW_PORT),
    # Google's own clients (google-cloud-bigquery, google-cloud-storage) in any service or user code reach the
    # stack's BigQuery and Cloud Storage by the variables they already honour (scheme included, as they expect)
    "BIGQUERY_EMULATOR_HOST": "http://{bigquery}:" + str(BIGQUERY_PORT),
    "STORAGE_EMULATOR_HOST": "http://{storage}:" + str(STORAGE_PORT),
    "HYP_WAREHOUSE_DIR": "{data}/warehouse",
    "PYTHONUNBUFFERED": "1",
    # Resident memory: glibc makes up to 8 malloc arenas per core for threaded processes (gRPC, uvicorn,
    # Beam), two are plenty here; blocks of 64 KiB and more (query results, Arrow buffers, which Arrow then
    # takes from malloc rather than its own jemalloc pool) are mapped and go back to the system when freed.
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_MMAP_THRESHOLD_": "65536",
    "MALLOC_TRIM_THRESHOLD_": "131072",
    "ARROW_DEFAULT_MEMORY_POOL": "system",
}


# Logs kept per service: compose's json-file driver rotates each container's output at LOG_MAX_SIZE and keeps
# LOG_MAX_FILE files; `hyp up` has each service rotate its own log file (services/common/logs.py) at
# HYP_LOG_MAX_BYTES with HYP_LOG_BACKUPS older files (defaults: the same bound, 5 MB x 3).
LOG_MAX_SIZE = "5m"
LOG_MAX_FILE = 3


SERVICES: tuple[Service, ...] = (
    Service(
        name="pubsub",
        command=(
            "pubsub",
            "--host",
            "{bind}",
            "--port",
            str(PUBSUB_PORT),
            "--rest-port",
            str(PUBSUB_REST_PORT),
            "--data-dir",
            "{data}/pubsub",
        ),
        image="pubsub",
        summary="Pub/Sub emulator with the stack's topology (gRPC + REST)",
        env={"HYP_PROCESSOR_PUSH_ENDPOINT": "http://{processor}:" + str(PROCESSOR_PORT) + "/"},
        ports=(PUBSUB_PORT, PUBSUB_REST_PORT),
        health=Health(PUBSUB_REST_PORT, "/", expect="Ok.", interval_s=1.0),
        volumes={"pubsub-data": "/data/pubsub"},
        urls={
            "Pub/Sub emulator": "PUBSUB_EMULATOR_HOST={pubsub}:" + str(PUBSUB_PORT),
            "Pub/Sub REST": "http://{pubsub}:" + str(PUBSUB_REST_PORT) + "/metrics",
        },
        memory="512m",
    ),
    Service(
        name="mlflow",
        command=("mlflow", "--host", "{bind}", "--port", str(MLFLOW_PORT), "--data-dir", "{data}/mlflow"),
        image="app",
        summary="MLflow tracking server and model registry (sqlite, served artifacts)",
        env={
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # no uvicorn line per request (MLflow's server prints them raw: ~6 KB/min at the default rate);
            # drop this line to see them again (docs/stack.md)
            "MLFLOW_UVICORN_OPTS": "--no-access-log",
            "HYP_MLFLOW_ALLOWED_HOSTS": "{mlflow}:" + str(MLFLOW_PORT) + ",localhost:*,127.0.0.1:*",
        },
        ports=(MLFLOW_PORT,),
        health=Health(MLFLOW_PORT, "/health", retries=60),
        volumes={"mlflow-data": "/data/mlflow"},
        urls={"MLflow": "http://{mlflow}:" + str(MLFLOW_PORT)},
        memory="1g",
    ),
    Service(
        name="init",
        gpu=True,
        command=("train", "--bootstrap"),
        image="app",
        summary="one-shot: train and promote a first champion when the registry is empty",
        depends_on=("mlflow",),
        oneshot=True,
        # the registry already has the alias: nothing to train (saves starting a Python with MLflow)
        done_if=Health(
            MLFLOW_PORT,
            "/api/2.0/mlflow/registered-models/alias?name=${HYP_MODEL_NAME}&alias=${HYP_MODEL_ALIAS}",
            expect='"model_version"',
        ),
        memory="1g",
    ),
    Service(
        name="bigquery",
        # the Read API's port given, not left to its default: `hyp up` checked it free, and the address printed is
        # then the one it serves (its default falls back to any free port when REST port + 1 is taken)
        command=(
            *("bigquery", "--host", "{bind}", "--port", str(BIGQUERY_PORT)),
            *("--read-port", str(BIGQUERY_READ_PORT)),
        ),
        image="app",  # DuckDB, pyarrow, FastAPI (and the models package, for BigQuery ML)
        summary="BigQuery REST API over the warehouse (BIGQUERY_EMULATOR_HOST) and its Storage Read API (gRPC)",
        ports=(BIGQUERY_PORT, BIGQUERY_READ_PORT),
        health=Health(BIGQUERY_PORT, "/health", retries=60),
        # serves the same warehouse folder the detector and the processor write (HYP_WAREHOUSE_DIR)
        volumes={"warehouse-data": "/data/warehouse"},
        urls={
            "BigQuery API": "BIGQUERY_EMULATOR_HOST=http://{bigquery}:" + str(BIGQUERY_PORT),
            # no variable of Google's names it (the Storage client honours none): a channel's address
            "BigQuery Read API": "{bigquery}:" + str(BIGQUERY_READ_PORT) + " (gRPC, insecure channel)",
        },
        memory="512m",
        background=True,
    ),
    Service(
        name="storage",
        command=("storage", "--host", "{bind}", "--port", str(STORAGE_PORT), "--data-dir", "{data}/storage"),
        image="app",
        summary="Cloud Storage JSON API on a local folder (STORAGE_EMULATOR_HOST)",
        ports=(STORAGE_PORT,),
        health=Health(STORAGE_PORT, "/health"),
        volumes={"storage-data": "/data/storage"},
        urls={"Cloud Storage API": "STORAGE_EMULATOR_HOST=http://{storage}:" + str(STORAGE_PORT)},
        memory="256m",
        background=True,
    ),
    Service(
        name="detector",
        gpu=True,
        command=("detector", "--metrics_port", str(DETECTOR_METRICS_PORT)),
        image="app",
        summary="Beam streaming detector (scores events with @champion)",
        ports=(DETECTOR_METRICS_PORT,),
        health=Health(DETECTOR_METRICS_PORT, "/metrics", retries=60),
        # Not "init": importing Beam and starting the runner (most of its start-up) needs no model, so it
        # overlaps MLflow's start. The detector then waits for @champion itself (its MLflow client retries
        # while the server starts; then up to 60 s for the alias, which the init job sets on a first start).
        depends_on=("pubsub",),
        volumes={"warehouse-data": "/data/warehouse"},
        urls={"detector metrics": "http://{detector}:" + str(DETECTOR_METRICS_PORT) + "/metrics"},
        memory="1g",
        replicas_env="HYP_DETECTOR_WORKERS",
    ),
    Service(
        name="endpoint",
        gpu=True,
        # --state-dir: the endpoints and deployments made through Vertex's API survive a restart
        command=("endpoint", "--host", "{bind}", "--port", str(ENDPOINT_PORT), "--state-dir", "{data}/endpoint-state"),
        image="app",
        summary="Vertex-AI-compatible prediction endpoint and model/endpoint resources",
        ports=(ENDPOINT_PORT,),
        health=Health(ENDPOINT_PORT, "/health", retries=60),
        depends_on=("init",),
        volumes={"endpoint-state": "/data/endpoint-state"},
        urls={"endpoint": "http://{endpoint}:" + str(ENDPOINT_PORT) + "/docs"},
        memory="768m",
    ),
    Service(
        name="processor",
        command=("processor", "--host", "{bind}", "--port", str(PROCESSOR_PORT)),
        image="app",
        summary="Cloud-Run-style processor (push from hyp_subscription_cloud_run)",
        env={"HYP_ENDPOINT_URL": "http://{endpoint}:" + str(ENDPOINT_PORT)},
        ports=(PROCESSOR_PORT,),
        health=Health(PROCESSOR_PORT, "/health"),
        depends_on=("pubsub", "endpoint"),
        volumes={"warehouse-data": "/data/warehouse"},
        urls={"processor": "http://{processor}:" + str(PROCESSOR_PORT)},
        memory="512m",
    ),
    Service(
        name="loadgen",
        command=("loadgen", "--to", "pubsub", "--rate", "${HYP_LOADGEN_RATE}", "--no-progress"),
        image="app",  # numpy and pyarrow
        summary="load generator: purchase events with labelled anomalies",
        # Events flow once the detector runs and a champion exists (init), not after the processor: the
        # detector loads @champion when its first messages arrive, so that load overlaps the endpoint's and
        # processor's start, and no CPU goes to the stream while MLflow starts or the first champion trains.
        # Nothing is lost: pushes to a processor still starting are retried with backoff (10 s doubling, the
        # topology's policy) and the detector's subscription holds its events until it pulls them.
        depends_on=("pubsub", "detector", "init"),
        memory="384m",
    ),
    Service(
        name="orchestrator",
        command=(
            *("orchestrator", "--host", "{bind}", "--port", str(ORCHESTRATOR_PORT)),
            *("--data-dir", "{data}/orchestrator"),
        ),
        image="app",
        summary="orchestrator: new data or drift -> retrain -> evaluate -> promote",
        env={
            "HYP_ORCH_ENDPOINT_URL": "http://{endpoint}:" + str(ENDPOINT_PORT),
            "HYP_ORCH_DETECTOR_METRICS_URL": "http://{detector}:" + str(DETECTOR_METRICS_PORT) + "/metrics",
        },
        ports=(ORCHESTRATOR_PORT,),
        health=Health(ORCHESTRATOR_PORT, "/health", retries=60),
        depends_on=("init",),
        volumes={"warehouse-data": "/data/warehouse", "orchestrator-data": "/data/orchestrator"},
        urls={"orchestrator": "http://{orchestrator}:" + str(ORCHESTRATOR_PORT) + "/runs"},
        memory="1g",
        background=True,
    ),
    Service(
        name="console",
        command=("console", "--host", "{bind}", "--port", str(CONSOLE_PORT)),
        image="app",
        summary="web console: topics, backlog, throughput, anomalies, model versions",
        env={
            "HYP_CONSOLE_PUBSUB_URL": "http://{pubsub}:" + str(PUBSUB_REST_PORT),
            "HYP_CONSOLE_DETECTOR_METRICS_URL": "http://{detector}:" + str(DETECTOR_METRICS_PORT) + "/metrics",
            "HYP_CONSOLE_ENDPOINT_URL": "http://{endpoint}:" + str(ENDPOINT_PORT),
            "HYP_CONSOLE_PROCESSOR_URL": "http://{processor}:" + str(PROCESSOR_PORT),
            "HYP_CONSOLE_ORCHESTRATOR_URL": "http://{orchestrator}:" + str(ORCHESTRATOR_PORT),
            # what the browser opens: the ports published on the host
            "HYP_CONSOLE_MLFLOW_PUBLIC_URL": "http://127.0.0.1:" + str(MLFLOW_PORT),
            "HYP_CONSOLE_ENDPOINT_PUBLIC_URL": "http://127.0.0.1:" + str(ENDPOINT_PORT),
        },
        ports=(CONSOLE_PORT,),
        health=Health(CONSOLE_PORT, "/health"),
        depends_on=("pubsub", "bigquery"),  # shows the warehouse's tables (BigQuery's view of them)
        volumes={"warehouse-data": "/data/warehouse"},
        urls={"console": "http://{console}:" + str(CONSOLE_PORT)},
        memory="512m",
        background=True,
    ),
)

SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)

# printed among the emulator-host variables though not one: the Read API's address, beside BIGQUERY_EMULATOR_HOST
CLIENT_URL_LABELS = frozenset({"BigQuery Read API"})


def client_first(lines: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(label, url)`` lines as `hyp up` prints them: what Google's clients are pointed at first, together (the
    emulator-host variables a user exports, and the Read API's address beside BigQuery's), then the others; each
    group in the stack's order."""
    return sorted(lines, key=lambda line: "_EMULATOR_HOST=" not in line[1] and line[0] not in CLIENT_URL_LABELS)


def service(name: str) -> Service:
    """A service by name; ``detector-N`` is worker N of ``hyp up --detector-workers`` (:func:`scale`)."""
    for s in SERVICES:
        if s.name == name:
            return s
    if is_detector(name) and int(name.rsplit("-", 1)[1]) < MAX_DETECTOR_WORKERS:
        workers = max(2, int(name.rsplit("-", 1)[1]) + 1)
        return next(s for s in scale(SERVICES, workers) if s.name == name)
    raise KeyError(f"unknown service {name!r} (services: {', '.join(SERVICE_NAMES)})")


def order(services: tuple[Service, ...] = SERVICES) -> list[Service]:
    """Services in dependency order (a dependency before its dependants); raises on a cycle."""
    by_name = {s.name: s for s in services}
    done: list[Service] = []
    seen: set[str] = set()
    visiting: set[str] = set()

    def visit(s: Service) -> None:
        if s.name in seen:
            return
        if s.name in visiting:
            raise ValueError(f"dependency cycle through {s.name!r}")
        visiting.add(s.name)
        for dep in s.depends_on:
            if dep not in by_name:
                raise ValueError(f"{s.name!r} depends on unknown service {dep!r}")
            visit(by_name[dep])
        visiting.discard(s.name)
        seen.add(s.name)
        done.append(s)

    for s in services:
        visit(s)
    return done


Place = Literal["local", "compose"]


def hosts(place: Place, services: tuple[Service, ...] = SERVICES) -> dict[str, str]:
    return {s.name: ("127.0.0.1" if place == "local" else s.name) for s in services}


# `hyp up --port-offset N`: every port of the stack moved by N, locally (a second stack beside the first, or a
# test's stack beside a benchmark's). Ports are moved where a value names one: after a colon (host:port, URLs)
# and as the argument of one of these flags.
PORT_FLAGS = frozenset({"--port", "--rest-port", "--read-port", "--metrics_port"})


@lru_cache(maxsize=1)
def _port_pattern() -> re.Pattern[str]:
    ports = {port for s in SERVICES for port in s.ports} | {s.health.port for s in SERVICES if s.health}
    ports |= set(DETECTOR_WORKER_PORTS)  # the workers of `hyp up --detector-workers N` (scale)
    return re.compile(r"(?<=:)(" + "|".join(str(port) for port in sorted(ports)) + r")(?![0-9])")


def shift_ports(value: str, port_offset: int) -> str:
    """``value`` with every ``:PORT`` of a stack port moved by ``port_offset``."""
    if not port_offset:
        return value
    return _port_pattern().sub(lambda m: str(int(m.group(0)) + port_offset), value)


def resolve(
    value: str, place: Place, *, data: str, tunables: Mapping[str, str] | None = None, port_offset: int = 0
) -> str:
    """Fill the placeholders of one value for a place.

    ``${NAME}`` becomes the tunable's value locally (from ``tunables``) and ``${NAME:-default}`` in compose.
    Locally, ``port_offset`` moves the stack's ports (:func:`shift_ports`).
    """
    fills = {"bind": "127.0.0.1" if place == "local" else "0.0.0.0", "data": data, **hosts(place)}
    out = value
    for name, default in TUNABLES.items():
        token = "${" + name + "}"
        if token in out:
            replacement = (tunables or {}).get(name, default) if place == "local" else "${" + f"{name}:-{default}" + "}"
            out = out.replace(token, replacement)
    for key, fill in fills.items():
        out = out.replace("{" + key + "}", fill)
    return shift_ports(out, port_offset) if place == "local" else out


def environment(
    s: Service, place: Place, *, data: str, tunables: Mapping[str, str] | None = None, port_offset: int = 0
) -> dict[str, str]:
    """The environment of one service in a place (common settings first, the service's own over them)."""
    merged = {**COMMON_ENV, **s.env}
    own = "127.0.0.1" if place == "local" else s.name
    return {
        k: resolve(v.replace("{self}", own), place, data=data, tunables=tunables, port_offset=port_offset)
        for k, v in merged.items()
    }


def command(
    s: Service, place: Place, *, data: str, tunables: Mapping[str, str] | None = None, port_offset: int = 0
) -> list[str]:
    args = [resolve(a, place, data=data, tunables=tunables, port_offset=port_offset) for a in s.command]
    if place == "local" and port_offset:
        args = [
            str(int(a) + port_offset) if i and args[i - 1] in PORT_FLAGS and a.isdigit() else a
            for i, a in enumerate(args)
        ]
    return args


# `hyp up --detector-workers N` and compose replicas: several detector processes on the one subscription, as
# Dataflow's workers share one (services/detector/workers.py). Locally worker i is the service ``detector-i``
# with ``--worker-id i`` and its metrics on DETECTOR_METRICS_PORT + i; a dependency on "detector" is one on
# every worker, and the orchestrator's probe gets every worker's /metrics URL (comma-separated).
DETECTOR = "detector"
MAX_DETECTOR_WORKERS = 16
DETECTOR_WORKER_PORTS = tuple(range(DETECTOR_METRICS_PORT, DETECTOR_METRICS_PORT + MAX_DETECTOR_WORKERS))
DETECTOR_URL_ENV = ("HYP_ORCH_DETECTOR_METRICS_URL", "HYP_CONSOLE_DETECTOR_METRICS_URL")  # take every worker's URL


def worker_name(i: int) -> str:
    return f"{DETECTOR}-{i}"


def is_detector(name: str) -> bool:
    """The detector, or one of its workers (``detector-0``, ``detector-1`` ...)."""
    return name == DETECTOR or (name.startswith(DETECTOR + "-") and name[len(DETECTOR) + 1 :].isdigit())


def detector_metrics_urls(workers: int, host: str = "{detector}") -> list[str]:
    """Every worker's /metrics URL (placeholders filled by :func:`resolve`)."""
    return [f"http://{host}:{port}/metrics" for port in DETECTOR_WORKER_PORTS[: max(1, workers)]]


def _worker(s: Service, i: int) -> Service:
    port = DETECTOR_METRICS_PORT + i
    cmd = [a if a != str(DETECTOR_METRICS_PORT) else str(port) for a in s.command]
    health = replace(s.health, port=port) if s.health else None
    urls = {f"{label} ({i})": url.replace(f":{DETECTOR_METRICS_PORT}/", f":{port}/") for label, url in s.urls.items()}
    return replace(
        s,
        name=worker_name(i),
        command=(*cmd, "--worker-id", str(i)),
        summary=f"{s.summary}: worker {i}",
        ports=(port,),
        health=health,
        urls=urls,
    )


def scale(services: Sequence[Service], detector_workers: int) -> tuple[Service, ...]:
    """``services`` with the detector as ``detector_workers`` workers (unchanged for one)."""
    if not 1 <= detector_workers <= MAX_DETECTOR_WORKERS:
        raise ValueError(f"detector workers must be 1..{MAX_DETECTOR_WORKERS}, got {detector_workers}")
    if detector_workers == 1 or not any(s.name == DETECTOR for s in services):
        return tuple(services)
    workers = [worker_name(i) for i in range(detector_workers)]
    urls = ",".join(detector_metrics_urls(detector_workers, "{detector}"))
    out: list[Service] = []
    for s in services:
        if s.name == DETECTOR:
            out += [_worker(s, i) for i in range(detector_workers)]
            continue
        deps = tuple(w for dep in s.depends_on for w in (workers if dep == DETECTOR else [dep]))
        env = {k: (urls if k in DETECTOR_URL_ENV else v) for k, v in s.env.items()}
        out.append(replace(s, depends_on=deps, env=env))
    return tuple(out)
