"""hyp-local in someone else's project, end to end (issue 19): the wheels of this repository and of its pytest
plugin, a `hyp` tool environment and a user's test environment, both fresh and outside the repository, and
the example project's (examples/user-project) test suite run there with the Docker-free fixtures.

The user's environment gets only the plugin and the example's own dependencies: `import models` is the
user's package and hyp-local's `services` / `loadgen` are not importable. Google's clients and hyp-local's
dependencies come from PyPI (reachable here) pinned by requirements.lock, so uv's cache serves most of them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "packaging" / "pytest-hyp-local"
EXAMPLE = ROOT / "examples" / "user-project"
UV = Path(sys.executable).parent / "uv"
TOOL_EXTRAS = "warehouse,serve"  # what hyp pubsub, hyp bigquery and hyp storage need

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.local_only("packaging: hyp-local installed in another project"),
]


def run(*argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        ["nice", "-n", "19", *map(str, argv)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (
        f"{' '.join(map(str, argv))} -> {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would leak the repository into a child: PYTHONPATH, the venv,
    pytest's own variables, emulator hosts."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PUBSUB_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("PYTEST_", "HYP_"))}
    return {**env, **extra}


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".*"))
    return dst


def build_wheels(work: Path) -> Path:
    """hyp-local's wheel (from a copy of the sources and data files it packages, so the checkout gets no build
    folders) and the plugin's, built with this venv's setuptools (no build isolation)."""
    dist = work / "dist"
    source = work / "hyp-local"
    source.mkdir()
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    for name in ("README.md", *(f for files in data_files.values() for f in files)):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    for package in ("services", "models", "loadgen"):
        copy_tree(ROOT / package, source / package)
    for tree in (source, copy_tree(PLUGIN, work / "plugin")):
        run(UV, "build", "--wheel", "--no-build-isolation", "--python", sys.executable, "--out-dir", dist, tree)
    return dist


def venv(path: Path) -> Path:
    run(UV, "venv", "-q", "--python", f"{sys.version_info.major}.{sys.version_info.minor}", path)
    return path / "bin" / "python"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("user-project")
    assert not work.is_relative_to(ROOT)
    dist = build_wheels(work)
    [wheel] = dist.glob("hyp_local-*.whl")
    lock = ROOT / "requirements.lock"

    tool_python = venv(work / "hyp-tool")  # what `uv tool install` makes: hyp-local in an environment of its own
    run(UV, "pip", "install", "-q", "--python", tool_python, "-c", lock, f"hyp-local[{TOOL_EXTRAS}] @ {wheel.as_uri()}")

    project = copy_tree(EXAMPLE, work / "shop-orders")
    user_python = venv(work / "user-env")
    run(UV, "pip", "install", "-q", "--python", user_python, "-c", lock, "--find-links", dist, "-e", ".[test]",
        cwd=project)  # fmt: skip
    return {"work": work, "project": project, "user_python": user_python, "hyp": tool_python.parent / "hyp"}


def test_the_example_suite_passes_with_the_docker_free_fixtures(installed: dict[str, Path]) -> None:
    report = installed["work"] / "report.xml"
    env = clean_env(HYP_LOCAL_HYP=str(installed["hyp"]))
    run(installed["user_python"], "-m", "pytest", "-p", "no:cacheprovider", "-m", "not docker",
        f"--junitxml={report}", cwd=installed["project"], env=env, timeout=480)  # fmt: skip
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    assert counts["failures"] == counts["errors"] == counts["skipped"] == 0, counts
    names = {case.get("name") for case in suite.iter("testcase")}
    assert {
        "test_published_orders_arrive_on_the_subscription",
        "test_revenue_per_customer",
        "test_a_receipt_reads_back",
        "test_clients_built_from_the_environment",
        "test_one_service_from_the_environment",
        "test_models_is_this_projects_package",
    } <= names


def test_the_users_environment_has_only_the_plugin_of_ours(installed: dict[str, Path]) -> None:
    probe = (
        "import importlib.util as u, models, hyp_local_pytest; print(models.__file__); "
        "print([n for n in ('services', 'loadgen') if u.find_spec(n)])"
    )
    out = run(installed["user_python"], "-c", probe, cwd=installed["work"], env=clean_env()).splitlines()
    assert Path(out[0]).is_relative_to(installed["project"] / "models")
    assert out[1] == "[]"
    assert not (installed["user_python"].parent / "hyp").exists()  # the command lives in its own environment


def test_the_installed_wheel_shows_its_image_build_context_without_a_checkout(installed: dict[str, Path]) -> None:
    """`hyp images build` from the tool environment, run outside the repository: its help, and a dry run whose
    context is the installed package (the Dockerfile, lock and pyproject from the wheel's data files)."""
    hyp, env, cwd = installed["hyp"], clean_env(), installed["work"]
    assert "--dry-run" in run(hyp, "images", "build", "--help", cwd=cwd, env=env)
    out = run(hyp, "images", "build", "--dry-run", "--image", "pubsub", "--image", "bigquery", cwd=cwd, env=env)
    assert out.startswith("context: the installed hyp-local package")
    tool = installed["hyp"].parent.parent
    for name in ("pyproject.toml", "requirements.lock", "compose/Dockerfile", "compose/requirements_for.py"):
        assert f"<- {tool / 'share' / 'hyp-local' / name}" in out, name
    assert f"<- {tool / 'lib' / 'python3.11' / 'site-packages' / 'services'}" in out and str(ROOT) not in out
    assert "--tag hyp-local/pubsub:0.1.0" in out and "--target bigquery" in out
    compose = json.loads(run(hyp, "images", "compose", cwd=cwd, env=env))  # what the hyp_stack fixture starts
    assert Path(compose["compose_file"]) == tool / "share" / "hyp-local" / "docker-compose.yml"
    assert Path(compose["compose_file"]).is_file() and (tool / "share" / "hyp-local" / ".env").is_file()
