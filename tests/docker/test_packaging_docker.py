"""hyp-local in someone else's project, the container half (issue 19): the example project's docker-marked
tests in a fresh user environment: the plugin's HypPubSubContainer, testcontainers' own PubSubContainer with
our image swapped in for Google's, and the plugin's BigQuery and Cloud Storage containers.

Builds the Pub/Sub and app images from this checkout (`hyp images build --image pubsub|app`), then the same wheels and
environments as tests/packaging/test_user_project.py, with the plugin's `containers` extra. Written for the
docker tier; not run on the shared development machine (no Docker engine there).

PubSubContainer runs `gcloud beta emulators pubsub start ...` as the image's command: our image's entry
point is `hyp`, so this needs the `gcloud` row of hyp's command table (services/gcloud, `hyp gcloud`).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import pytest

from tests.packaging.test_user_project import EXAMPLE, ROOT, UV, build_wheels, clean_env, copy_tree, run, venv

pytestmark = [
    pytest.mark.docker,
    pytest.mark.slow,
    pytest.mark.local_only("packaging: hyp-local's image in another project's testcontainers tests"),
]


def test_the_example_container_tests_pass(tmp_path_factory: pytest.TempPathFactory) -> None:
    from services.testing.fixtures import docker_missing

    if reason := docker_missing():
        pytest.skip(reason)
    for image in ("pubsub", "app"):
        run(sys.executable, "-m", "services.cli", "images", "build", "--image", image, cwd=ROOT, timeout=1800)

    work = tmp_path_factory.mktemp("user-project-docker")
    dist = build_wheels(work)
    project = copy_tree(EXAMPLE, work / "shop-orders")
    user_python = venv(work / "user-env")
    run(UV, "pip", "install", "-q", "--python", user_python, "-c", ROOT / "requirements.lock", "--find-links", dist,
        "-e", ".[test,containers]", cwd=project)  # fmt: skip

    report = work / "report.xml"
    env = clean_env(TESTCONTAINERS_RYUK_DISABLED="true")
    run(user_python, "-m", "pytest", "-p", "no:cacheprovider", "-m", "docker", f"--junitxml={report}",
        cwd=project, env=env, timeout=600)  # fmt: skip
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": 4, "failures": 0, "errors": 0, "skipped": 0}, counts
    names = {case.get("name") for case in suite.iter("testcase")}
    assert names == {"test_hyp_pubsub_container", "test_pubsub_container_with_our_image",
                     "test_hyp_bigquery_container", "test_hyp_storage_container"}  # fmt: skip
