"""A deployed custom container that hangs (its process alive, its health route no longer answering): restarted
after a few unanswered health checks in a row, ``:predict`` UNAVAILABLE meanwhile, and given up (reported in
the DeployedModel's status, stopped) when it keeps hanging. Custom containers run as local processes
(``HYP_ENDPOINT_CONTAINERS=local``), through google-cloud-aiplatform against `hyp endpoint` and `hyp storage`
as processes; the checks are made quick (0.3 s apart, 0.5 s to answer, given up after 2 restarts)."""

from __future__ import annotations

import contextlib
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions

from services.common.processes import wait_for
from services.testing.hyp import HypProcess
from services.testing.vertex import vertex_init
from tests.services.vertex.conftest import STAGING, storage_server  # noqa: F401  (the module's hyp storage)

pytestmark = [pytest.mark.integration]

IMAGE = "europe-west1-docker.pkg.dev/my-project/serving/hangs:1"

# the "container": one request at a time (a hung handler blocks every later request, as in a stuck server);
# writes its pid to PID_FILE; its health route hangs (the process stays alive) from health request
# HANG_AFTER + 1 on when armed: always with HANG_ALWAYS, or when HANG_ONCE_FILE exists at its start (it removes
# the file, so the server started after it does not hang); predictions are each instance's sum
SERVER = textwrap.dedent(
    """
    import json, os, time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    open(os.environ["PID_FILE"], "w").write(str(os.getpid()))
    armed = bool(os.environ.get("HANG_ALWAYS"))
    once = os.environ.get("HANG_ONCE_FILE")
    if once and os.path.exists(once):
        os.remove(once)
        armed = True
    seen = 0

    class Handler(BaseHTTPRequestHandler):
        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            global seen
            seen += 1
            if armed and seen > int(os.environ["HANG_AFTER"]):
                time.sleep(3600)
            self.reply(200 if self.path == os.environ["AIP_HEALTH_ROUTE"] else 404, {})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            self.reply(200, {"predictions": [{"sum": sum(i)} for i in body["instances"]]})

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", int(os.environ["AIP_HTTP_PORT"])), Handler).serve_forever()
    """
)


@pytest.fixture(scope="module")
def endpoint_server(
    storage_server: HypProcess,  # noqa: F811
    champion: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HypProcess]:
    tmp = tmp_path_factory.mktemp("endpoint")
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": champion.tracking_uri,
        "STORAGE_EMULATOR_HOST": storage_server.url,
        "HYP_ENDPOINT_CONTAINERS": "local",
        "HYP_ENDPOINT_CONTAINER_START_TIMEOUT_S": "30",
        "HYP_ENDPOINT_CONTAINER_CHECK_INTERVAL_S": "0.3",
        "HYP_ENDPOINT_CONTAINER_PROBE_TIMEOUT_S": "0.5",
        "HYP_ENDPOINT_CONTAINER_LIVENESS_FAILURES": "3",
        "HYP_ENDPOINT_CONTAINER_MAX_RESTARTS": "2",
    }
    with HypProcess("endpoint", log_path=tmp / "endpoint.log", env=env).start(timeout=120) as server:
        yield server


@pytest.fixture
def aiplatform(endpoint_server: HypProcess, storage_server: HypProcess, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_server.url)
    return vertex_init(endpoint_server.url, staging_bucket=f"gs://{STAGING}")


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    path = tmp_path / "server.py"
    path.write_text(SERVER)
    return path


@contextlib.contextmanager
def deployed(aiplatform: Any, server_script: Path, name: str, env: dict[str, str]) -> Iterator[Any]:
    model = aiplatform.Model.upload(
        display_name=name,
        serving_container_image_uri=IMAGE,
        serving_container_command=[sys.executable, str(server_script)],
        serving_container_environment_variables={"HANG_AFTER": "3", **env},
    )
    endpoint = aiplatform.Endpoint.create(display_name=name)
    try:
        model.deploy(endpoint=endpoint)
        yield endpoint
    finally:
        endpoint.undeploy_all()
        endpoint.delete()
        model.delete()


def pid_of(path: Path) -> int:
    """The pid the server wrote (0 while a starting server has the file open and empty)."""
    text = path.read_text().strip()
    return int(text) if text else 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def status(endpoint: Any) -> Any:
    [model] = endpoint.list_models()
    return model.status


def outcome(endpoint: Any) -> str:
    """``ok`` when :predict answers, else the UNAVAILABLE message (any other error fails the test)."""
    try:
        answer = endpoint.predict(instances=[[1.0, 2.0]], timeout=30)
    except exceptions.ServiceUnavailable as exc:
        return str(exc)
    assert answer.predictions[0]["sum"] == 3.0
    return "ok"


@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements")
def test_a_hung_container_is_unavailable_then_restarted(aiplatform, server_script, tmp_path):
    pid_file, once = tmp_path / "pid", tmp_path / "hang-once"
    once.write_text("")
    with deployed(
        aiplatform, server_script, "hangs-once", {"PID_FILE": str(pid_file), "HANG_ONCE_FILE": str(once)}
    ) as endpoint:
        first = pid_of(pid_file)
        assert not once.exists()  # the first server is armed: its health route hangs after 3 requests
        refused = wait_for(
            lambda: (m := outcome(endpoint)) != "ok" and m, 30, what="predict to be refused while the server hangs"
        )
        assert "did not answer" in refused
        wait_for(lambda: pid_of(pid_file) != first and outcome(endpoint) == "ok", 60, what="the restart")
        assert not alive(first)  # the hung process was stopped, not left beside the new one
        up = status(endpoint)
        assert up.available_replica_count == 1
        assert "restarted 1x" in up.message and "alive but not answering" in up.message
        second = pid_of(pid_file)
        for _ in range(20):  # the restarted server is not armed: it keeps answering
            assert outcome(endpoint) == "ok"
        assert pid_of(pid_file) == second


@pytest.mark.local_only("Kubernetes under Vertex would keep restarting it, at a 5-minute pace; here it is given up")
def test_a_container_that_keeps_hanging_is_given_up_and_reported(aiplatform, server_script, tmp_path):
    pid_file = tmp_path / "pid"
    with deployed(
        aiplatform, server_script, "hangs-always", {"PID_FILE": str(pid_file), "HANG_ALWAYS": "1"}
    ) as endpoint:
        first = pid_of(pid_file)
        down = wait_for(
            lambda: (s := status(endpoint)) and "the deployment failed" in s.message and s,
            90,
            what="the deployment to be reported failed",
        )
        assert down.available_replica_count == 0 and "kept failing (2 restarts" in down.message
        last = pid_of(pid_file)
        assert last != first and not alive(last) and not alive(first)  # restarted, then stopped for good
        message = outcome(endpoint)
        assert "the deployment failed" in message and "Undeploy it" in message
        assert "the deployment failed" in status(endpoint).message  # not restarted again
        assert pid_of(pid_file) == last
