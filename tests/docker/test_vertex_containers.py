"""A custom container run with Docker: `hyp endpoint` (HYP_ENDPOINT_CONTAINERS=docker) runs the user's image
with Vertex's AIP_* variables, its port published on 127.0.0.1 at a free port, and proxies :predict to it,
through google-cloud-aiplatform. The image is built here from the stand-in base (python:3.11-slim) with the
same tiny server the local-process tests run."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions

from services.common.processes import wait_for
from services.testing.hyp import HypProcess
from services.testing.storage import storage_client
from services.testing.vertex import vertex_init
from tests.services.vertex.containers import SERVER

pytestmark = [pytest.mark.docker, pytest.mark.integration]

DOCKERFILE = """
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
COPY server.py /srv/server.py
ENV HOST=0.0.0.0 PID_FILE=/tmp/pid
CMD ["python", "/srv/server.py"]
"""


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    context = tmp_path_factory.mktemp("image")
    (context / "server.py").write_text(SERVER)
    (context / "Dockerfile").write_text(DOCKERFILE)
    tag = f"hyp-local/vertex-echo:{uuid.uuid4().hex[:8]}"
    base = os.environ.get("HYP_TEST_BASE_IMAGE", "python:3.11-slim")
    build = ["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(context)]
    done = subprocess.run(build, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    try:
        yield tag
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


@pytest.fixture(scope="module")
def servers(champion: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HypProcess, HypProcess]]:
    tmp = tmp_path_factory.mktemp("servers")
    with HypProcess("storage", "--data-dir", str(tmp / "data"), log_path=tmp / "storage.log").start(60) as storage:
        storage_client(storage.url).create_bucket("hyp-vertex-staging")
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": champion.tracking_uri,
            "STORAGE_EMULATOR_HOST": storage.url,
            "HYP_ENDPOINT_CONTAINERS": "docker",
            "HYP_ENDPOINT_CONTAINER_START_TIMEOUT_S": "60",
            "HYP_ENDPOINT_CONTAINER_CHECK_INTERVAL_S": "1",
        }
        with HypProcess("endpoint", log_path=tmp / "endpoint.log", env=env).start(timeout=120) as endpoint:
            yield storage, endpoint


def containers_of(image: str) -> list[str]:
    done = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"ancestor={image}"], capture_output=True, text=True, check=True
    )
    return done.stdout.split()


@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements")
def test_a_custom_image_runs_in_docker_with_vertexs_variables(image, servers, monkeypatch, tmp_path: Path):
    storage, endpoint_server = servers
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage.url)
    aiplatform = vertex_init(endpoint_server.url, staging_bucket="gs://hyp-vertex-staging")
    model = aiplatform.Model.upload(
        display_name="echo-image",
        serving_container_image_uri=image,
        serving_container_environment_variables={"FACTOR": "3"},
        serving_container_ports=[8080],
    )
    broken = aiplatform.Model.upload(
        display_name="echo-unhealthy",
        serving_container_image_uri=image,
        serving_container_environment_variables={"FACTOR": "1", "HEALTH": "500"},
    )
    endpoint = aiplatform.Endpoint.create(display_name="docker")
    try:
        model.deploy(endpoint=endpoint)
        response = endpoint.predict(instances=[[1.0, 1.0]])
        assert response.predictions[0]["sum"] == 6.0
        assert response.predictions[0]["AIP_DEPLOYED_MODEL_ID"] == response.deployed_model_id
        assert len(containers_of(image)) == 1
        with pytest.raises(exceptions.GoogleAPICallError, match=r"never became ready.*answered 500"):
            broken.deploy(endpoint=endpoint, traffic_percentage=0)
        assert [d.id for d in endpoint.list_models()] == [response.deployed_model_id]
        endpoint.undeploy_all()
        assert containers_of(image) == []  # undeploy and the failed deploy both removed theirs
    finally:
        endpoint.delete(force=True)
        model.delete()
        broken.delete()


def answers(endpoint: Any) -> bool:
    try:
        return endpoint.predict(instances=[[1.0, 1.0]], timeout=30).predictions[0]["sum"] == 2.0
    except exceptions.ServiceUnavailable:
        return False


@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements")
def test_a_container_killed_after_its_deploy_is_replaced_by_a_new_one(image, servers, monkeypatch):
    storage, endpoint_server = servers
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage.url)
    aiplatform = vertex_init(endpoint_server.url, staging_bucket="gs://hyp-vertex-staging")
    model = aiplatform.Model.upload(
        display_name="echo-killed",
        serving_container_image_uri=image,
        serving_container_environment_variables={"FACTOR": "1"},
    )
    endpoint = aiplatform.Endpoint.create(display_name="docker-killed")
    try:
        model.deploy(endpoint=endpoint)
        assert answers(endpoint)
        [first] = containers_of(image)
        subprocess.run(["docker", "kill", first], capture_output=True, check=True, timeout=60)
        wait_for(
            lambda: answers(endpoint) and containers_of(image) not in ([], [first]),
            120,
            what="a new container to answer after the first was killed",
        )
        assert len(containers_of(image)) == 1  # the killed one was removed
        assert endpoint.list_models()[0].status.available_replica_count == 1
        endpoint.undeploy_all()
        assert containers_of(image) == []
    finally:
        endpoint.delete(force=True)
        model.delete()
