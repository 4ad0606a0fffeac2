"""Every challenge as a participant runs it: start, check fails, solve, check passes (real processes, 127.0.0.1 only).

One MLflow server and one emulator (the session fixtures) serve all challenges; the labs start the
endpoint, the participant's processor and the detector themselves, on free ports, and `hyp lab reset`
stops them.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from services.common.processes import free_port
from services.testing.hyp import REPO as ROOT
from services.testing.hyp import run_hyp
from tests.fixtures.pubsub import unique

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(2700)]


def lab(env: dict[str, str], *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return run_hyp("lab", *args, timeout=timeout, env=env)


def lab_env(tmp: Path, emulator, mlflow) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HYP_LAB_DIR": str(tmp / "lab"),
        "HYP_WAREHOUSE_DIR": str(tmp / "warehouse"),
        "MLFLOW_TRACKING_URI": mlflow.tracking_uri,
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "HYP_PROJECT": emulator.project,
        "HYP_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "BIGQUERY_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}",  # challenge 1 starts hyp bigquery there
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}",  # and challenge 2 hyp storage
        "HYP_LAB_PROCESSOR_PORT": str(free_port()),
        "HYP_LAB_EVENTS_TOPIC": unique("lab-events"),
        "HYP_LAB_DETECTIONS_TOPIC": unique("lab-detections"),
        "HYP_LAB_DETECTOR_SUBSCRIPTION": unique("lab-detector"),
        "HYP_LAB_EVENTS": "3000",
        "HYP_LAB_WAIT_S": "120",
        "HYP_MODEL_NAME": unique("lab-model"),  # this test's own registered model on the shared server
    }


def test_every_challenge_start_fail_solve_pass(tmp_path, pubsub_emulator, mlflow_server):
    env = lab_env(tmp_path, pubsub_emulator, mlflow_server)
    timings: list[str] = []
    try:
        for n in range(8):
            began = time.monotonic()
            started = lab(env, "start", str(n))
            assert started.returncode == 0, f"start {n}:\n{started.stdout}\n{started.stderr}"
            # without a detector running, check 7 can only fail by waiting: a short wait is enough to see it fail
            before = lab({**env, "HYP_LAB_DETECTION_WAIT_S": "15"} if n == 7 else env, "check", str(n))
            assert before.returncode == 1, f"check {n} before solving:\n{before.stdout}\n{before.stderr}"
            assert f"NOT YET challenge {n}:" in before.stdout
            solved = lab(env, "solve", str(n))
            assert solved.returncode == 0, f"solve {n}:\n{solved.stdout}\n{solved.stderr}"
            after = lab(env, "check", str(n))
            assert after.returncode == 0, f"check {n} after solving:\n{after.stdout}\n{after.stderr}"
            assert f"PASS challenge {n}:" in after.stdout
            timings.append(f"challenge {n}: {time.monotonic() - began:.0f} s")
    finally:
        reset = lab(env, "reset", timeout=120)
        print("\n".join(timings))
    assert reset.returncode == 0, reset.stderr
    assert not (tmp_path / "lab").exists()
    assert "lab services running: none" in lab(env, "list").stdout
