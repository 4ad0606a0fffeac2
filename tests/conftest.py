"""Shared test configuration: environment for testcontainers, no cloud probing, no Beam runner that downloads."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import NoReturn

import pytest

from services.testing.fixtures import docker_missing

# Nothing in the test run may reach a cloud metadata server or a registry.
os.environ.setdefault("GCE_METADATA_HOST", "127.0.0.1:1")
os.environ.setdefault("NO_GCE_CHECK", "True")
# testcontainers on this VM: no Ryuk (its image cannot be pulled), reach containers on 127.0.0.1.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false")

# Fixtures that start real processes (emulator, MLflow server, ...), shared by every test folder; the parity
# markers' check (services/testing/parity.py).
pytest_plugins = [
    "tests.fixtures.pubsub",
    "tests.fixtures.mlflow",
    "services.testing.fixtures",
    "services.testing.parity",
]

# Parity of whole folders or modules whose tests do not mark it themselves (a test's or module's own mark wins):
# path prefix below the repository -> mark. See docs/testing.md.
PARITY: dict[str, pytest.MarkDecorator] = {
    "tests/services/endpoint/test_vertex_sdk.py": pytest.mark.gcp_parity(
        "https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/predict"
    ),
    "tests/services/console/": pytest.mark.local_only("the web console is hyp-local's own (no Cloud console API)"),
    "tests/services/stack/": pytest.mark.local_only("`hyp up/down/status`, compose generation: local processes"),
    "tests/services/labs/": pytest.mark.local_only("the offline workshop labs"),
    "tests/loadgen/": pytest.mark.local_only("the load generator (stands in for the workshop's Cloud Run proxy)"),
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        if any(m.name in ("gcp_parity", "local_only") for m in item.iter_markers()):
            continue
        where = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        mark = next((m for prefix, m in PARITY.items() if where.startswith(prefix)), None)
        if mark is not None:
            item.add_marker(mark)
    # the docker tier needs an engine: where none answers, every one of its tests skips saying so (not only those
    # whose fixtures check); scripts/test.sh sets the engine up first wherever it may
    docker = [item for item in items if item.get_closest_marker("docker")]
    reason = docker_missing() if docker else None
    for item in docker if reason else []:
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _no_prism_runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail a test whose Beam pipeline reaches the PrismRunner: Beam's default runner (DirectRunner, and so a
    bare ``TestPipeline()``) tries Prism first, which downloads its binary into ~/.apache_beam/cache/prism.
    Tests pin a local runner (``runner="BundleBasedDirectRunner"``); the refused run makes Beam fall back, so the
    test still ends and this says why it fails."""
    if "apache_beam" not in sys.modules:  # only tests that imported Beam can build a pipeline
        yield
        return
    from apache_beam.runners.portability import prism_runner

    refused: list[str] = []

    def refuse(self: object, pipeline: object, options: object) -> NoReturn:
        refused.append(type(pipeline).__name__)
        raise RuntimeError("the PrismRunner downloads its binary; tests pin runner='BundleBasedDirectRunner'")

    monkeypatch.setattr(prism_runner.PrismRunner, "run_pipeline", refuse)
    yield
    if refused:
        pytest.fail(
            "a Beam pipeline used the default runner, which tries Prism (a download) first: "
            "pin runner='BundleBasedDirectRunner' (TestPipeline(runner=...) or PipelineOptions(runner=...))"
        )
