"""Custom containers through google-cloud-aiplatform: a model whose image is not a prebuilt one runs its
``serving_container_command`` as a local process (``HYP_ENDPOINT_CONTAINERS=local``, the conftest's server)
with Vertex's AIP_* variables, and ``:predict`` is proxied to it. A tiny Python HTTP server (containers.SERVER)
stands in for the user's container; the Docker runner is tests/docker/test_vertex_containers.py."""

from __future__ import annotations

import os
import signal
import sys

import pytest
from google.api_core import exceptions

from services.common.processes import wait_for
from tests.services.vertex.conftest import upload_folder
from tests.services.vertex.containers import IMAGE, alive, answers, deployed, refusal, status

pytestmark = [pytest.mark.integration]


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
