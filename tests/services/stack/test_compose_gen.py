"""The committed compose files follow the one definition; compose accepts them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.stack import compose_gen
from services.stack import definition as d

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", sorted(compose_gen.outputs()))
def test_committed_file_equals_generator_output(name):
    committed = (ROOT / name).read_text(encoding="utf-8")
    assert committed == compose_gen.outputs()[name], f"{name} is stale: run `python -m services.stack.compose_gen`"


def test_check_mode_names_a_stale_file(tmp_path, capsys):
    for name, text in compose_gen.outputs().items():
        (tmp_path / name).write_text(text)
    assert compose_gen.main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    assert compose_gen.main(["--check", "--root", str(tmp_path)]) == 1
    assert "docker-compose.yml" in capsys.readouterr().err


def test_every_service_of_the_definition_is_in_compose_with_its_command_and_ports():
    doc = yaml.safe_load(compose_gen.render_compose())
    for s in d.SERVICES:
        svc = doc["services"][s.name]
        assert svc["command"][0] == s.subcommand
        if s.replicas_env:  # the detector's workers: one host port each, from a range
            last = d.MAX_DETECTOR_WORKERS - 1
            assert svc["ports"] == [f"127.0.0.1:{p}-{p + last}:{p}" for p in s.ports]
        else:
            assert svc["ports"] == [f"127.0.0.1:{p}:{p}" for p in s.ports] if s.ports else "ports" not in svc
        assert svc["image"].startswith("hyp-local/") and not svc["image"].endswith(":latest")
        assert svc["pull_policy"] == "build" and svc["init"] is True
        assert svc["user"] == compose_gen.USER


def test_long_running_services_have_health_checks_and_jobs_gate_dependants():
    doc = yaml.safe_load(compose_gen.render_compose())
    for s in d.SERVICES:
        svc = doc["services"][s.name]
        if s.health:
            assert svc["healthcheck"]["test"][:4] == ["CMD", "python", "-m", "services.stack.healthcheck"]
            assert str(s.health.port) in svc["healthcheck"]["test"][4]
        for dep in s.depends_on:
            want = "service_completed_successfully" if d.service(dep).oneshot else "service_healthy"
            assert svc["depends_on"][dep]["condition"] == want
    # every long-running service except the load generator answers a health check
    assert {s.name for s in d.SERVICES if not s.oneshot and s.health is None} == {"loadgen"}


def test_settings_differ_only_by_place():
    s = d.service("processor")
    local = d.environment(s, "local", data="/tmp/h")
    compose = d.environment(s, "compose", data="/data")
    assert local.keys() == compose.keys()
    assert local["PUBSUB_EMULATOR_HOST"] == f"127.0.0.1:{d.PUBSUB_PORT}"
    assert compose["PUBSUB_EMULATOR_HOST"] == f"pubsub:{d.PUBSUB_PORT}"
    assert local["HYP_WAREHOUSE_DIR"] == "/tmp/h/warehouse"
    assert compose["HYP_PROJECT"] == "${HYP_PROJECT:-hyp-local}"
    assert local["HYP_PROJECT"] == "hyp-local"
    assert d.environment(s, "local", data="/x", tunables={"HYP_PROJECT": "other"})["HYP_PROJECT"] == "other"


def test_order_puts_dependencies_first_and_rejects_cycles():
    names = [s.name for s in d.order()]
    for s in d.SERVICES:
        for dep in s.depends_on:
            assert names.index(dep) < names.index(s.name)
    a = d.Service("a", ("x",), "app", "", depends_on=("b",))
    b = d.Service("b", ("x",), "app", "", depends_on=("a",))
    with pytest.raises(ValueError, match="cycle"):
        d.order((a, b))


def test_gpu_overlay_is_only_the_delta():
    gpu = yaml.safe_load(compose_gen.render_gpu())
    assert set(gpu["services"]) == {s.name for s in d.SERVICES if s.gpu}
    for svc in gpu["services"].values():
        assert set(svc) <= {"image", "build", "environment", "mem_limit", "deploy"}
        assert "CUDA_BASE_IMAGE" in svc["build"]["args"]["BASE_IMAGE"]
        assert "tf" in svc["build"]["args"]["EXTRAS"].split(",")
        assert svc["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_image_extras_exist_in_pyproject():
    import tomllib

    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for image in d.IMAGES.values():
        for extra in filter(None, image.extras.split(",")):
            assert extra in optional, f"image {image.key}: extra {extra!r} not in pyproject.toml"


needs_compose = pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="docker compose CLI not installed (scripts/test.sh sets Docker up before the first tier, as root)",
)


@needs_compose
@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--profile", "flink"],
        ["--profile", "google-emulator"],
        ["--profile", "postgres"],
        ["-f", "docker-compose.yml", "-f", "docker-compose.gpu.yml"],
    ],
    ids=["core", "flink", "google-emulator", "postgres", "gpu-overlay"],
)
def test_compose_config_validates(args):
    # `docker compose config` needs only the CLI, not a running engine
    result = subprocess.run(["docker", "compose", *args, "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@needs_compose
def test_gpu_overlay_merges_a_gpu_reservation_into_the_tensorflow_services():
    result = subprocess.run(
        ["docker", "compose", "-f", "docker-compose.yml", "-f", "docker-compose.gpu.yml", "config", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    import json

    merged = json.loads(result.stdout)["services"]
    assert merged["endpoint"]["image"] == d.IMAGES[d.GPU_IMAGE].tag
    assert merged["endpoint"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert merged["endpoint"]["ports"][0]["published"] == str(d.ENDPOINT_PORT)  # the rest of the service stays
    assert merged["pubsub"]["image"] == d.IMAGES["pubsub"].tag


@needs_compose
@pytest.mark.local_only("docker compose's replicas of the detector (its workers on one subscription)")
def test_the_detector_runs_as_many_replicas_as_hyp_detector_workers_says_and_only_it():
    import json
    import os

    def config(workers: str | None, *args: str) -> dict[str, Any]:
        env = {k: v for k, v in os.environ.items() if k != "HYP_DETECTOR_WORKERS"}
        if workers is not None:
            env["HYP_DETECTOR_WORKERS"] = workers
        cmd = ["docker", "compose", *args, "config", "--format", "json"]
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
        services: dict[str, Any] = json.loads(result.stdout)["services"]
        return services

    assert config(None)["detector"]["deploy"]["replicas"] == 1  # .env's default: one detector
    scaled = config("3", "--profile", "flink")
    assert scaled["detector"]["deploy"]["replicas"] == 3
    assert scaled["detector"]["environment"]["HYP_DETECTOR_WORKER_ID"] == "hostname"  # each labels its own samples
    assert scaled["detector"]["ports"][0]["published"] == f"{d.DETECTOR_METRICS_PORT}-{d.DETECTOR_METRICS_PORT + 15}"
    # the Flink profile's detector and harness derive from the detector but are not replicated
    assert "replicas" not in scaled["detector-flink"].get("deploy", {})
    assert "replicas" not in scaled["beam-sdk-harness"].get("deploy", {})
    # the orchestrator probes every replica by the service's name (services/orchestrator/consumers.py expand)
    assert scaled["orchestrator"]["environment"]["HYP_ORCH_DETECTOR_METRICS_URL"] == "http://detector:9464/metrics"


@pytest.mark.local_only("hyp up --detector-workers N: the definition's detector as N workers")
def test_scaling_the_definition_makes_one_service_per_worker_and_dependants_wait_for_all():
    assert d.scale(d.SERVICES, 1) == d.SERVICES
    scaled = {s.name: s for s in d.scale(d.SERVICES, 3)}
    workers = ["detector-0", "detector-1", "detector-2"]
    assert "detector" not in scaled and all(w in scaled for w in workers)
    for i, w in enumerate(workers):
        port = d.DETECTOR_METRICS_PORT + i
        assert d.command(scaled[w], "local", data="/h", port_offset=1000) == [
            *("detector", "--metrics_port", str(port + 1000), "--worker-id", str(i))
        ]
        assert scaled[w].ports == (port,) and scaled[w].health is not None and scaled[w].health.port == port
        assert d.is_detector(w)
    assert not d.is_detector("detector-flink")
    assert d.service("detector-2").ports == (d.DETECTOR_METRICS_PORT + 2,)  # a worker by name (LocalHypStack.port)
    assert scaled["loadgen"].depends_on == ("pubsub", *workers, "init")
    env = d.environment(scaled["orchestrator"], "local", data="/h", port_offset=1000)
    assert env["HYP_ORCH_DETECTOR_METRICS_URL"].split(",") == [
        f"http://127.0.0.1:{d.DETECTOR_METRICS_PORT + i + 1000}/metrics" for i in range(3)
    ]
    console = d.environment(scaled["console"], "local", data="/h", port_offset=1000)
    assert console["HYP_CONSOLE_DETECTOR_METRICS_URL"] == env["HYP_ORCH_DETECTOR_METRICS_URL"]  # each worker shown
    assert [s.name for s in d.order(d.scale(d.SERVICES, 3))].index("loadgen") > max(
        [s.name for s in d.order(d.scale(d.SERVICES, 3))].index(w) for w in workers
    )
    with pytest.raises(ValueError, match=r"1\.\.16"):
        d.scale(d.SERVICES, 17)
