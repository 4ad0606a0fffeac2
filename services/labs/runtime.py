"""What the labs start and remember: MLflow, the emulator, the endpoint, the detector; and the lab's state.

Processes go through services.stack.processes (one process group each, pid files with start times in
``<lab_dir>/run``), so ``hyp lab reset`` stops exactly what the labs started and nothing else. A service
that already answers (a `hyp up` stack, a test fixture, one the participant started) is used as it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from services.labs.settings import LabSettings
from services.stack import definition as d
from services.stack import processes
from services.stack.healthcheck import probe


class LabError(RuntimeError):
    """A lab step that cannot be done; the message says what and what to try."""


def log(message: str) -> None:
    print(f"  {message}", flush=True)


# ---- state -----------------------------------------------------------------------------------------


def state_path(s: LabSettings) -> Path:
    return s.lab_dir / "state.json"


def read_state(s: LabSettings) -> dict[str, Any]:
    try:
        return json.loads(state_path(s).read_text())
    except (OSError, ValueError):
        return {}


def update_state(s: LabSettings, **values: Any) -> dict[str, Any]:
    state = {**read_state(s), **values}
    s.lab_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_path(s).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(state_path(s))
    return state


# ---- probes ----------------------------------------------------------------------------------------


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(what: str, ready: Callable[[], str | None], timeout_s: float, alive: Callable[[], bool]) -> None:
    """Poll ``ready`` (None = ready, else the reason) until it is, the process dies, or time runs out."""
    from services.common.processes import wait_for

    reason: list[str | None] = ["not checked yet"]

    def check() -> bool:
        reason[0] = ready()
        if reason[0] is None:
            return True
        if not alive():
            raise LabError(f"{what} exited before becoming ready ({reason[0]})")
        return False

    try:
        wait_for(check, timeout_s, what)
    except TimeoutError:
        raise LabError(f"{what} not ready after {timeout_s:.0f} s: {reason[0]}") from None


def child_env(s: LabSettings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": s.mlflow_tracking_uri,
        "HYP_WAREHOUSE_DIR": str(s.warehouse_dir),
        "HYP_PROJECT": s.project,
        "HYP_LOCATION": s.location,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    if s.pubsub_emulator_host:
        env["PUBSUB_EMULATOR_HOST"] = s.pubsub_emulator_host
    env["BIGQUERY_EMULATOR_HOST"] = s.bigquery_url
    env["STORAGE_EMULATOR_HOST"] = s.storage_url
    env["HYP_ENDPOINT_URL"] = s.endpoint_url
    env["HYP_LAB_STAGING_BUCKET"] = s.staging_bucket
    env.update(extra)
    return env


def start_managed(s: LabSettings, name: str, args: list[str], ready: Callable[[], str | None], **env: str) -> None:
    """Start ``hyp <args>`` as a lab process and wait until ``ready``; LabError with the log tail if not."""
    service = d.Service(name=name, command=tuple(args), image="app", summary=f"lab: {name}")
    running = processes.start(service, s.run_dir, child_env(s, **env), args, Path.cwd())
    try:
        wait_until(f"`hyp {' '.join(args)}`", ready, s.wait_s, lambda: running.returncode() is None)
    except LabError as exc:
        processes.stop_pid(running.pid, 10, running.proc)
        processes.pid_file(s.run_dir, name).unlink(missing_ok=True)
        raise LabError(f"{exc}\n--- last lines of {running.log}:\n{processes.tail(running.log)}") from None
    log(f"started {name} (pid {running.pid}, log {running.log})")


def managed(s: LabSettings) -> list[str]:
    """Names of the lab processes that run now."""
    return [n for n, (pid, started) in processes.recorded(s.run_dir).items() if processes.pid_alive(pid, started)]


def stop_managed(s: LabSettings, name: str) -> bool:
    rec = processes.recorded(s.run_dir).get(name)
    if rec is None:
        return False
    how = processes.stop_pid(rec[0], 15, started=rec[1])
    processes.pid_file(s.run_dir, name).unlink(missing_ok=True)
    return how != "gone"


def stop_all(s: LabSettings) -> int:
    if not s.run_dir.exists():
        return 0
    return processes.stop_recorded(s.run_dir, 15, report=lambda line: log(line))


# ---- the services the challenges start from ------------------------------------------------------


def mlflow_health(s: LabSettings) -> str | None:
    return probe(f"{s.mlflow_tracking_uri.rstrip('/')}/health")


def ensure_mlflow(s: LabSettings) -> None:
    if mlflow_health(s) is None:
        log(f"MLflow answers at {s.mlflow_tracking_uri}")
        return
    host = urlsplit(s.mlflow_tracking_uri).hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost"):
        raise LabError(f"MLflow at {s.mlflow_tracking_uri} does not answer, and the labs only start one locally")
    data = s.lab_dir / "mlflow"
    args = ["mlflow", "--host", "127.0.0.1", "--port", str(s.mlflow_port), "--data-dir", str(data)]
    start_managed(s, "mlflow", args, lambda: mlflow_health(s))


def emulator_address(s: LabSettings) -> tuple[str, int]:
    if not s.pubsub_emulator_host:
        raise LabError("PUBSUB_EMULATOR_HOST is empty: the labs run against the local emulator (127.0.0.1:8085)")
    host, _, port = s.pubsub_emulator_host.rpartition(":")
    return host or "127.0.0.1", int(port)


def ensure_emulator(s: LabSettings) -> None:
    host, port = emulator_address(s)
    if not port_open(host, port):
        args = ["pubsub", "--host", "127.0.0.1", "--port", str(port), "--rest-port", "0"]
        start_managed(s, "pubsub", args, lambda: None if port_open(host, port) else "gRPC port closed")
    else:
        log(f"Pub/Sub emulator answers at {s.pubsub_emulator_host}")
    ensure_topology(s)


def ensure_topology(s: LabSettings) -> None:
    """The topics and subscriptions the labs use (the emulator's default topology has them; a shared one may not)."""
    from google.api_core.exceptions import AlreadyExists

    from services.common.pubsub_clients import publisher, subscriber

    pub, sub = publisher(s.pubsub_emulator_host), subscriber(s.pubsub_emulator_host)
    try:
        for topic in (s.events_topic, s.detections_topic):
            with contextlib.suppress(AlreadyExists):
                pub.create_topic(name=s.topic_path(topic), timeout=10)
        with contextlib.suppress(AlreadyExists):
            sub.create_subscription(
                name=s.subscription_path(s.detector_subscription), topic=s.topic_path(s.events_topic), timeout=10
            )
    finally:
        sub.close()


def bigquery_health(s: LabSettings) -> str | None:
    return probe(f"{s.bigquery_url.rstrip('/')}/health")


def ensure_bigquery(s: LabSettings) -> None:
    """`hyp bigquery` over the lab's warehouse, started unless one answers at BIGQUERY_EMULATOR_HOST."""
    if bigquery_health(s) is None:
        log(f"hyp bigquery answers at {s.bigquery_url}")
        return
    host = urlsplit(s.bigquery_url).hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost"):
        raise LabError(f"hyp bigquery at {s.bigquery_url} does not answer, and the labs only start one locally")
    args = ["bigquery", "--host", "127.0.0.1", "--port", str(s.bigquery_port), "--warehouse-dir", str(s.warehouse_dir)]
    start_managed(s, "bigquery", args, lambda: bigquery_health(s))


def storage_health(s: LabSettings) -> str | None:
    return probe(f"{s.storage_url.rstrip('/')}/health")


def ensure_storage(s: LabSettings) -> None:
    """`hyp storage` (started unless one answers at STORAGE_EMULATOR_HOST) and the lab's staging bucket."""
    if storage_health(s) is None:
        log(f"hyp storage answers at {s.storage_url}")
    else:
        host = urlsplit(s.storage_url).hostname or "127.0.0.1"
        if host not in ("127.0.0.1", "localhost"):
            raise LabError(f"hyp storage at {s.storage_url} does not answer, and the labs only start one locally")
        args = [
            "storage",
            "--host",
            "127.0.0.1",
            "--port",
            str(s.storage_port),
            "--data-dir",
            str(s.lab_dir / "storage"),
        ]
        start_managed(s, "storage", args, lambda: storage_health(s))
    from google.api_core.exceptions import Conflict

    from services.labs import sdk

    with contextlib.suppress(Conflict):  # `gcloud storage buckets create gs://BUCKET` on GCP
        sdk.storage(s).create_bucket(s.staging_bucket)
        log(f"created the staging bucket gs://{s.staging_bucket}")


def vertex_health(s: LabSettings) -> str | None:
    """None when the endpoint server answers Vertex's `endpoints.list` (a champion or not)."""
    import httpx

    try:
        r = httpx.get(s.endpoints_url, timeout=3.0)
    except httpx.HTTPError as exc:
        return f"no endpoint server answers at {s.endpoint_url} ({type(exc).__name__})"
    return None if r.status_code == 200 else f"GET {s.endpoints_url}: HTTP {r.status_code}"


def start_endpoint(s: LabSettings) -> None:
    """`hyp endpoint` as a lab process: Vertex's API for the SDK, endpoint 1 serving @champion, gs:// artifacts
    read from hyp storage, the endpoints the participant creates kept in the lab folder across restarts."""
    args = [
        "endpoint",
        "--host",
        "127.0.0.1",
        "--port",
        str(s.endpoint_port),
        "--endpoint-id",
        s.endpoint_id,
        "--mlflow-tracking-uri",
        s.mlflow_tracking_uri,
        "--reload-interval",
        "1",
        "--storage-host",
        s.storage_url,
        "--state-dir",
        str(s.lab_dir / "endpoint-state"),
    ]
    start_managed(s, "endpoint", args, lambda: vertex_health(s))


def ensure_vertex(s: LabSettings) -> None:
    """The endpoint server answering Vertex's API (started if none answers), with hyp storage behind it."""
    ensure_storage(s)
    if vertex_health(s) is None:
        log(f"Vertex AI's API answers at {s.endpoint_url}")
        return
    start_endpoint(s)


def run_script(s: LabSettings, script: Path, *args: str, timeout_s: float = 600) -> str:
    """Run a participant's (or the reference) Python script in its folder, as `python script.py` in a shell
    where `eval "$(hyp lab env)"` ran; LabError with its output if it fails."""
    import sys

    log(f"$ python {' '.join((script.name, *args))}  (in {script.parent})")
    return _run([sys.executable, script.name, *args], f"python {script.name}", child_env(s), timeout_s, script.parent)


def run_hyp(s: LabSettings, args: list[str], timeout_s: float = 600, **env: str) -> str:
    """Run one `hyp` command to completion (as a participant would); LabError with its output if it fails."""
    import sys

    log(f"$ hyp {' '.join(args)}")
    return _run([sys.executable, "-m", "services.cli", *args], f"hyp {args[0]}", child_env(s, **env), timeout_s)


def _run(command: list[str], what: str, env: dict[str, str], timeout_s: float, cwd: Path | None = None) -> str:
    """``command``'s stdout; LabError naming ``what`` with the end of its output when it fails."""
    import subprocess

    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise LabError(f"`{what}` failed (exit {result.returncode}):\n{tail}")
    return result.stdout
