"""The GPU overlay on a machine with an NVIDIA GPU and the NVIDIA Container Toolkit: TensorFlow in the
rebuilt image sees the GPU. (Its compose validity is checked everywhere by tests/services/stack.)"""

from __future__ import annotations

import subprocess

import pytest

from services.stack.images import ROOT
from services.testing.fixtures import docker_missing

pytestmark = [pytest.mark.docker, pytest.mark.gpu, pytest.mark.slow]

FILES = ["-f", "docker-compose.yml", "-f", "docker-compose.gpu.yml"]


def _require_nvidia_runtime() -> None:
    """Skip, saying why, unless Docker answers and has the NVIDIA runtime: asked when the test runs, never at
    collection, so a machine without Docker still collects every tier."""
    reason = docker_missing()
    if reason:
        pytest.skip(reason)
    info = subprocess.run(["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    if "nvidia" not in info.stdout:
        pytest.skip("no NVIDIA container runtime in this Docker engine")


def test_tensorflow_sees_the_gpu_in_the_endpoint_image():
    _require_nvidia_runtime()
    compose = ["docker", "compose", "-p", "hyp-gpu-test", *FILES]
    built = subprocess.run([*compose, "build", "endpoint"], cwd=ROOT, capture_output=True, text=True, timeout=3000)
    assert built.returncode == 0, built.stderr[-3000:]
    probe = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    ran = subprocess.run(
        [*compose, "run", "--rm", "--no-deps", "--entrypoint", "python", "endpoint", "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    subprocess.run([*compose, "down", "-v"], cwd=ROOT, capture_output=True)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert int(ran.stdout.strip().splitlines()[-1]) >= 1
