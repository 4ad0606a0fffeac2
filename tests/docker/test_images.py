"""`hyp images save|load`: the offline path; compose then starts with no build and no pull."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import httpx
import pytest

from services.stack import definition as d
from services.stack.images import ROOT
from services.testing.hyp import run_hyp
from services.testing.stack import port_override

pytestmark = pytest.mark.docker


def test_save_then_load_restores_the_emulator_image(hyp_pubsub, tmp_path):
    # hyp_pubsub built the image; save it, remove it, load it back, start it without building
    tag = d.IMAGES["pubsub"].tag
    tarball = tmp_path / "images.tar"
    saved = run_hyp("images", "save", "--image", "pubsub", "--output", str(tarball))
    assert saved.returncode == 0, saved.stderr
    assert tarball.stat().st_size > 10_000_000
    # a second tag stands in for "removed": loading must bring back the saved image id
    before = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", tag], capture_output=True, text=True)
    subprocess.run(["docker", "tag", tag, "hyp-local/pubsub:keep"], check=True)
    subprocess.run(["docker", "rmi", tag], check=True, capture_output=True)
    try:
        loaded = run_hyp("images", "load", "--input", str(tarball))
        assert loaded.returncode == 0, loaded.stderr
        after = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", tag], capture_output=True, text=True)
        assert after.stdout == before.stdout
        _compose_starts_without_build_or_pull(tmp_path)
    finally:
        subprocess.run(["docker", "tag", "hyp-local/pubsub:keep", tag], check=True)
        subprocess.run(["docker", "rmi", "hyp-local/pubsub:keep"], capture_output=True)


def _compose_starts_without_build_or_pull(tmp_path) -> None:
    """The loaded image is enough: compose starts the emulator with building and pulling both refused."""
    override = tmp_path / "ports.override.yml"
    override.write_text(port_override(["pubsub"]))
    compose = ["docker", "compose", "-p", f"hyp-images-{uuid.uuid4().hex[:8]}"]
    compose += ["-f", str(ROOT / "docker-compose.yml"), "-f", str(override)]
    try:
        up = subprocess.run(
            [*compose, "up", "--no-build", "--pull", "never", "--wait", "pubsub"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert up.returncode == 0, up.stderr[-3000:]
        assert "Building" not in up.stderr and "Pulling" not in up.stderr
        port = subprocess.run([*compose, "port", "pubsub", str(d.PUBSUB_REST_PORT)], capture_output=True, text=True)
        rest = port.stdout.strip().rsplit(":", 1)[-1]
        assert httpx.get(f"http://127.0.0.1:{rest}/", timeout=5).text == "Ok."
    finally:
        subprocess.run([*compose, "down", "--volumes"], cwd=ROOT, capture_output=True, timeout=120)


def test_load_names_a_missing_tarball(tmp_path):
    if shutil.which("docker") is None:  # `hyp images` asks for the CLI first (no engine needed here)
        pytest.skip("no docker CLI on PATH")
    result = run_hyp("images", "load", "--input", str(tmp_path / "nope.tar"))
    assert result.returncode == 1 and "no tarball" in result.stderr
