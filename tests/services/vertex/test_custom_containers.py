"""Custom containers through google-cloud-aiplatform: a model whose image is not a prebuilt one runs its
``serving_container_command`` as a local process (``HYP_ENDPOINT_CONTAINERS=local``, the conftest's server)
with Vertex's AIP_* variables, and ``:predict`` is proxied to it. A tiny Python HTTP server stands in for the
user's container; the Docker runner is tests/docker/test_vertex_containers.py."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest
from google.api_core import exceptions

from services.common.processes import wait_for
from tests.services.vertex.conftest import upload_folder

pytestmark = [pytest.mark.integration]

IMAGE = "europe-west1-docker.pkg.dev/my-project/serving/echo:1"

# the "container": answers health with HEALTH (200 by default; the number in HEALTH_FILE while it exists),
# predictions with each instance's sum times FACTOR and what Vertex told it; writes its pid where PID_FILE says;
# exits at start while CRASH is set or CRASH_FILE exists; listens on HOST (0.0.0.0 in an image)
SERVER = textwrap.dedent(
    """
    import json, os
    from http.server import BaseHTTPRequestHandler, HTTPServer

    open(os.environ["PID_FILE"], "w").write(str(os.getpid()))
    if os.environ.get("CRASH"):
        raise SystemExit("cannot load the model: " + os.environ["CRASH"])
    if os.path.exists(os.environ.get("CRASH_FILE", "/nonexistent")):
        raise SystemExit("cannot load the model: " + open(os.environ["CRASH_FILE"]).read())

    def health():
        if os.path.exists(os.environ.get("HEALTH_FILE", "/nonexistent")):
            return int(open(os.environ["HEALTH_FILE"]).read())
        return int(os.environ.get("HEALTH", "200"))

    class Handler(BaseHTTPRequestHandler):
        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == os.environ["AIP_HEALTH_ROUTE"]:
                self.reply(health(), {})
            else:
                self.reply(404, {"error": self.path})

        def do_POST(self):
            if self.path != os.environ["AIP_PREDICT_ROUTE"]:
                return self.reply(404, {"error": self.path})
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            factor = float(os.environ["FACTOR"])
            told = {k: os.environ[k] for k in ("AIP_DEPLOYED_MODEL_ID", "AIP_STORAGE_URI", "AIP_MODE")}
            self.reply(200, {"predictions": [{"sum": sum(i) * factor, **told} for i in body["instances"]]})

        def log_message(self, *args):
            pass

    HTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["AIP_HTTP_PORT"])), Handler).serve_forever()
    """
)


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    path = tmp_path / "server.py"
    path.write_text(SERVER)
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements")
def test_a_custom_container_gets_vertexs_variables_and_answers_predict(aiplatform, gcs, server_script, tmp_path):
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "weights.bin").write_bytes(b"\x00")
    uri = upload_folder(gcs, artifacts, "hyp-vertex-models")
    pid_file = tmp_path / "pid"
    model = aiplatform.Model.upload(
        display_name="echo",
        artifact_uri=uri,
        serving_container_image_uri=IMAGE,
        serving_container_command=[sys.executable, str(server_script)],
        serving_container_environment_variables={"FACTOR": "2", "PID_FILE": str(pid_file)},
        serving_container_ports=[8080],
    )
    endpoint = aiplatform.Endpoint.create(display_name="custom")
    try:
        model.deploy(endpoint=endpoint)
        response = endpoint.predict(instances=[[1.0, 2.0], [3.0, 4.0]])
        assert [p["sum"] for p in response.predictions] == [6.0, 14.0]
        told = response.predictions[0]
        assert told["AIP_DEPLOYED_MODEL_ID"] == response.deployed_model_id
        assert told["AIP_STORAGE_URI"] == uri and told["AIP_MODE"] == "PREDICTION"
        pid = int(pid_file.read_text())
        assert alive(pid)
        endpoint.undeploy_all()
        wait_for(lambda: not alive(pid), 30, what="the container process to stop after undeploy")
    finally:
        endpoint.delete(force=True)
        model.delete()


@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements")
@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"HEALTH": "503"}, r"not healthy within 30 s \(/v1/endpoints/.*/deployedModels/.* answered 503\)"),
        ({"CRASH": "weights missing"}, r"(?s)exited with code 1.*cannot load the model: weights missing"),
    ],
)
def test_a_container_that_never_becomes_healthy_fails_its_deploy_and_leaves_nothing(
    aiplatform, server_script, tmp_path, env, reason
):
    pid_file = tmp_path / "pid"
    model = aiplatform.Model.upload(
        display_name="unhealthy",
        serving_container_image_uri=IMAGE,
        serving_container_command=[sys.executable, str(server_script)],
        serving_container_environment_variables={"FACTOR": "1", "PID_FILE": str(pid_file), **env},
    )
    endpoint = aiplatform.Endpoint.create(display_name="unhealthy")
    try:
        with pytest.raises(exceptions.GoogleAPICallError, match="Model server never became ready") as caught:
            model.deploy(endpoint=endpoint)
        assert caught.match(reason)
        assert endpoint.list_models() == [] and endpoint.traffic_split == {}
        pid = int(pid_file.read_text())
        wait_for(lambda: not alive(pid), 30, what="the failed container's process to be gone")
    finally:
        endpoint.delete(force=True)
        model.delete()


@pytest.mark.local_only("without Docker a custom container runs its command; an image alone cannot run here")
def test_a_custom_image_without_a_command_is_refused_when_there_is_no_docker(aiplatform):
    model = aiplatform.Model.upload(display_name="no-command", serving_container_image_uri=IMAGE)
    endpoint = aiplatform.Endpoint.create(display_name="no-command")
    try:
        with pytest.raises(exceptions.GoogleAPICallError, match="no command to run as a local process"):
            model.deploy(endpoint=endpoint)
        assert endpoint.list_models() == []
    finally:
        endpoint.delete(force=True)
        model.delete()


def refusal(endpoint) -> str | None:
    """The message of ``:predict``'s UNAVAILABLE, or None when it answers."""
    try:
        endpoint.predict(instances=[[1.0, 2.0]], timeout=30)
    except exceptions.ServiceUnavailable as exc:
        return str(exc)
    return None


def answers(endpoint) -> bool:
    try:
        return endpoint.predict(instances=[[1.0, 2.0]], timeout=30).predictions[0]["sum"] == 3.0
    except exceptions.ServiceUnavailable:
        return False


def status(endpoint):
    [deployed] = endpoint.list_models()  # fetched again: list_models syncs the resource
    return deployed.status


@contextlib.contextmanager
def deployed(aiplatform, server_script, name: str, env: dict[str, str]):
    """The script deployed as a custom container on an endpoint of its own: (model, endpoint); undeployed and
    deleted afterwards."""
    model = aiplatform.Model.upload(
        display_name=name,
        serving_container_image_uri=IMAGE,
        serving_container_command=[sys.executable, str(server_script)],
        serving_container_environment_variables={"FACTOR": "1", **env},
    )
    endpoint = aiplatform.Endpoint.create(display_name=name)
    try:
        model.deploy(endpoint=endpoint)
        yield model, endpoint
    finally:
        endpoint.undeploy_all()
        endpoint.delete()
        model.delete()


@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements")
def test_a_container_that_dies_after_its_deploy_is_restarted_and_predict_is_unavailable_meanwhile(
    aiplatform, server_script, tmp_path
):
    pid_file, crash_file = tmp_path / "pid", tmp_path / "crash"
    env = {"PID_FILE": str(pid_file), "CRASH_FILE": str(crash_file)}
    with deployed(aiplatform, server_script, "dies", env) as (_, endpoint):
        assert answers(endpoint) and status(endpoint).available_replica_count == 1
        first = int(pid_file.read_text())
        crash_file.write_text("weights gone")  # the restarts fail until the file is removed
        os.kill(first, signal.SIGKILL)
        message = wait_for(
            lambda: (m := refusal(endpoint)) and "cannot load the model: weights gone" in m and m,
            60,
            what="predict to be refused naming the failed restart",
        )
        assert "exited with code -9" in message and "restart" in message
        down = status(endpoint)
        assert down.available_replica_count == 0 and "weights gone" in down.message
        crash_file.unlink()
        wait_for(lambda: answers(endpoint), 90, what="predict to be answered by the restarted server")
        assert int(pid_file.read_text()) != first
        up = status(endpoint)
        assert up.available_replica_count == 1 and "restarted 1x" in up.message
    pid = int(pid_file.read_text())
    wait_for(lambda: not alive(pid), 30, what="the restarted server to stop after undeploy")


@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements")
def test_a_container_whose_health_route_fails_gets_no_predictions_until_it_answers_200(
    aiplatform, server_script, tmp_path
):
    pid_file, health_file = tmp_path / "pid", tmp_path / "health"
    env = {"PID_FILE": str(pid_file), "HEALTH_FILE": str(health_file)}
    with deployed(aiplatform, server_script, "flaky", env) as (_, endpoint):
        pid = int(pid_file.read_text())
        health_file.write_text("503")
        message = wait_for(lambda: refusal(endpoint), 60, what="predict to be refused while unhealthy")
        assert "answered 503" in message and "taken out of service" in message
        assert status(endpoint).available_replica_count == 0
        health_file.unlink()
        wait_for(lambda: answers(endpoint), 60, what="predict to be answered once healthy again")
        assert int(pid_file.read_text()) == pid and alive(pid)  # taken out of service, not restarted
        assert status(endpoint).available_replica_count == 1
