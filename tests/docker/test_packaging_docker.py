"""hyp-local in someone else's project, the container half (issue 19): the example project's docker-marked
tests in a fresh user environment: the plugin's HypPubSubContainer, testcontainers' own PubSubContainer with
our image swapped in for Google's, the plugin's BigQuery and Cloud Storage containers, testcontainers-java's
BigQueryEmulatorContainer convention with our bigquery image swapped in for goccy's, and the whole stack
through Docker Compose (the plugin's hyp_stack) with google-cloud-aiplatform scoring on its endpoint.

Everything comes from the wheels, outside the repository: the same wheels and environments as
tests/packaging/test_user_project.py (the plugin with its `containers` extra), plus a `hyp` tool environment
whose `hyp images build` builds the pubsub, app and bigquery images from the installed package (no checkout)
and whose `hyp images compose` names the installed compose file the stack fixture starts.

PubSubContainer runs `gcloud beta emulators pubsub start ...` as the image's command: our image's entry
point is `hyp`, so this needs the `gcloud` row of hyp's command table (services/gcloud, `hyp gcloud`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.packaging.test_user_project import (
    EXAMPLE,
    ROOT,
    TOOL_EXTRAS,
    UV,
    build_wheels,
    clean_env,
    copy_tree,
    run,
    venv,
)

pytestmark = [
    pytest.mark.docker,
    pytest.mark.slow,
    pytest.mark.local_only("packaging: hyp-local's image in another project's testcontainers tests"),
]


@pytest.mark.timeout(3600)  # three image builds, two environments, the whole stack
def test_the_example_container_tests_pass(tmp_path_factory: pytest.TempPathFactory) -> None:
    from services.testing.fixtures import docker_missing

    if reason := docker_missing():
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("user-project-docker")
    assert not work.is_relative_to(ROOT)
    dist = build_wheels(work)
    [wheel] = dist.glob("hyp_local-*.whl")
    tool_python = venv(work / "hyp-tool")
    run(UV, "pip", "install", "-q", "--python", tool_python, "-c", ROOT / "requirements.lock",
        f"hyp-local[{TOOL_EXTRAS}] @ {wheel.as_uri()}")  # fmt: skip
    hyp = tool_python.parent / "hyp"
    for image in ("pubsub", "app", "bigquery"):  # from the installed package's build files, outside the checkout
        out = run(hyp, "images", "build", "--dry-run", "--image", image, cwd=work, env=clean_env())
        assert out.startswith("context: the installed hyp-local package")
        run(hyp, "images", "build", "--image", image, cwd=work, env=clean_env(), timeout=1800)

    project = copy_tree(EXAMPLE, work / "shop-orders")
    user_python = venv(work / "user-env")
    run(UV, "pip", "install", "-q", "--python", user_python, "-c", ROOT / "requirements.lock", "--find-links", dist,
        "-e", ".[test,containers]", cwd=project)  # fmt: skip

    report = work / "report.xml"
    env = clean_env(TESTCONTAINERS_RYUK_DISABLED="true", HYP_LOCAL_HYP=str(hyp))
    run(user_python, "-m", "pytest", "-p", "no:cacheprovider", "-m", "docker", f"--junitxml={report}",
        cwd=project, env=env, timeout=1200)  # fmt: skip
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": 7, "failures": 0, "errors": 0, "skipped": 0}, counts
    names = {case.get("name") for case in suite.iter("testcase")}
    assert names == {"test_hyp_pubsub_container", "test_pubsub_container_with_our_image",
                     "test_hyp_bigquery_container", "test_hyp_storage_container",
                     "test_bigquery_emulator_container_convention_with_our_image",
                     "test_the_stack_has_its_topics_and_dataset",
                     "test_the_deployed_model_scores_purchases_through_the_vertex_sdk"}  # fmt: skip
