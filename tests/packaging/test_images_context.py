"""`hyp images build`'s build context and Dockerfiles, checked without building (the builds themselves are in the
docker tier): the context a checkout gives, the same context staged as an installed wheel gives it, the wheel's
data files, the Pub/Sub image's Dockerfile, and the Dataflow SDK image skipped where Beam's base is missing."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from services.stack import definition as d
from services.stack import images
from services.testing.hyp import run_hyp
from services.testing.pubsub import REPO

pytestmark = pytest.mark.local_only("packaging: hyp-local's images and wheel")


def test_a_checkout_is_its_own_context() -> None:
    assert images.is_checkout()
    sources = images.context_sources()
    assert set(sources) == {*images.BUILD_FILES, *images.PACKAGES}
    assert all(path.is_relative_to(REPO) for path in sources.values())


def test_the_wheel_ships_every_build_file_the_dockerfile_copies() -> None:
    """pyproject's data-files hold each build file, and the Dockerfile copies nothing else from the context."""
    data_files = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    shipped = {f for files in data_files.values() for f in files}
    assert set(images.BUILD_FILES) <= shipped
    assert all((REPO / f).is_file() for f in shipped)
    copied = set()
    for line in (REPO / images.DOCKERFILE).read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied.update(line.split()[1:-1])
    assert copied == {*images.BUILD_FILES, *images.PACKAGES} - {images.DOCKERFILE}


def test_the_staged_context_holds_the_sources_without_bytecode(tmp_path: Path) -> None:
    staged = images.stage_context(tmp_path / "ctx")
    for name in (*images.BUILD_FILES, *images.PACKAGES):
        assert (staged / name).exists(), name
    assert (staged / "services" / "cli.py").is_file()
    assert not list(staged.rglob("__pycache__")) and not list(staged.rglob("*.pyc"))


def test_the_pubsub_dockerfile_takes_its_base_as_an_argument_and_ships_no_build_tools() -> None:
    text = (REPO / images.DOCKERFILE).read_text()
    assert not text.startswith("# syntax=")
    assert re.search(r"^ARG BASE_IMAGE=", text, re.M) and re.search(r"^FROM \$\{BASE_IMAGE\}", text, re.M)
    final = text[text.index("AS hyp") :]  # the image's own stage: venv and sources copied in, nothing installed
    runs = [line for line in final.splitlines() if line.startswith("RUN ")]
    assert runs == ["RUN python -m compileall -q /app/services /app/models /app/loadgen"]  # bytecode: fast start
    assert "pip" not in final.replace("PIP_DISABLE", "")
    assert "--without-pip" in text  # the environment the image copies has no pip


def test_dry_run_shows_the_context_and_commands_without_docker() -> None:
    done = run_hyp("images", "build", "--dry-run", "--image", "pubsub", "--image", "bigquery")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("context: this checkout")
    assert f"--tag hyp-local/pubsub:{d.VERSION}" in out
    assert "--target bigquery" in out and "EXTRAS=warehouse,serve" in out


def test_the_sdk_dockerfile_comes_from_the_detectors_module_and_copies_what_the_context_has(tmp_path: Path) -> None:
    from services.detector.sdk_image import SDK_BASE_IMAGE, dockerfile

    base, text = images.sdk_dockerfile()
    assert (base, text) == (SDK_BASE_IMAGE, dockerfile())
    staged = images.stage_context(tmp_path / "ctx")
    for line in text.splitlines():
        if line.startswith("COPY "):
            assert (staged / line.split()[1]).exists(), line
    assert not any(line.startswith(("ENTRYPOINT", "CMD")) for line in text.splitlines())


def test_the_sdk_image_is_skipped_with_a_reason_where_beams_base_is_missing() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI")
    base, _ = images.sdk_dockerfile()
    if subprocess.run(["docker", "image", "inspect", base], capture_output=True).returncode == 0:
        pytest.skip(f"{base} is present here: the build would run")
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("no Docker engine answers")
    argv = [sys.executable, "-m", "services.cli", "images", "build", "--image", "detector-sdk", "--no-pull"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"skipping {images.SDK_IMAGE}: its base image {base} is not present (--no-pull)" in done.stderr


def test_compose_names_the_compose_file_and_each_services_ports() -> None:
    import json

    done = run_hyp("images", "compose")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert Path(info["compose_file"]) == REPO / "docker-compose.yml"
    assert info["ports"]["pubsub"] == [8085, 8086] and info["ports"]["endpoint"] == [8080]
    assert info["project"] == "hyp-local" and "hyp-local/app:0.1.0" in info["images"]


def test_the_stack_fixtures_override_publishes_every_port_on_a_free_host_port() -> None:
    import yaml
    from hyp_local_pytest.stack import port_override

    text = port_override({"pubsub": [8085, 8086], "endpoint": [8080]})
    assert "ports: !override" in text
    parsed = yaml.safe_load(text.replace("!override", ""))
    assert parsed["services"]["pubsub"]["ports"] == ["127.0.0.1::8085", "127.0.0.1::8086"]
    assert parsed["services"]["endpoint"]["ports"] == ["127.0.0.1::8080"]


def test_the_stack_fixture_starts_the_test_services_unless_told_otherwise() -> None:
    import json

    from hyp_local_pytest.stack import parse_services, services_to_start

    info = json.loads(run_hyp("images", "compose").stdout)
    default = default_services(Path(info["compose_file"]))
    # the emulators and the data path with its model; no load generator, orchestrator or console
    assert set(info["test_services"]) == default - {"loadgen", "orchestrator", "console"}
    assert {"pubsub", "mlflow", "init", "endpoint", "processor", "bigquery", "storage"} <= set(info["test_services"])
    assert services_to_start(None, info) == info["test_services"]
    assert services_to_start([], info) == [] and services_to_start(["pubsub"], info) == ["pubsub"]
    assert services_to_start(None, {}) == []  # an older hyp names none: every service
    assert parse_services("") is None and parse_services("all") == []
    assert parse_services("pubsub, endpoint") == ["pubsub", "endpoint"]


def default_services(path: Path) -> set[str]:
    """The compose file's default services (those in no profile)."""
    import yaml

    services = yaml.safe_load(path.read_text())["services"]
    return {name for name, body in services.items() if not body.get("profiles")}
