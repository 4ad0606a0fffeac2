"""The GPU overlay on a machine with an NVIDIA GPU and the NVIDIA Container Toolkit: TensorFlow in the
rebuilt image sees the GPU. (Its compose validity is checked everywhere by tests/services/stack.)"""

from __future__ import annotations

import subprocess

import pytest

from services.stack.images import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.gpu, pytest.mark.slow]

FILES = ["-f", "docker-compose.yml", "-f", "docker-compose.gpu.yml"]


def _nvidia_runtime() -> bool:
    info = subprocess.run(["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True)
    return info.returncode == 0 and "nvidia" in info.stdout


@pytest.mark.skipif(not _nvidia_runtime(), reason="no NVIDIA container runtime in this Docker engine")
def test_tensorflow_sees_the_gpu_in_the_endpoint_image():
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
