"""Challenge 5 on its own, as a participant runs it on Vertex: ``aiplatform.CustomTrainingJob(...).run()``
(run_job.py) has `hyp endpoint` run train.py as a training process that reads ``hyp bigquery`` and saves
``model.joblib`` into ``AIP_MODEL_DIR`` on ``hyp storage``; the check fails before, names a failed job's
error, and passes once the job has trained and registered the model (the model challenge 6 deploys)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.common.processes import stop_group
from services.testing.hyp import REPO
from services.testing.storage import storage_client
from services.testing.vertex import vertex_init
from tests.fixtures.mlflow import start_mlflow
from tests.services.labs.test_labs_integration import lab, lab_env

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture
def own_registry(tmp_path):
    server = start_mlflow(tmp_path / "mlflow")
    yield server
    stop_group(server.process)


def test_lab_5_trains_in_a_custom_training_job_and_registers_the_model(tmp_path, pubsub_emulator, own_registry):
    env = lab_env(tmp_path, pubsub_emulator, own_registry)
    work = tmp_path / "lab" / "work" / "5-custom-model"
    try:
        started = lab(env, "start", "5")
        assert started.returncode == 0, f"{started.stdout}\n{started.stderr}"
        assert (work / "train.py").exists() and (work / "run_job.py").exists()
        before = lab(env, "check", "5")
        assert before.returncode == 1 and "no custom training job since the challenge started" in before.stdout

        # a training script that fails: the job fails (the SDK raises), and the check names the script's error
        (work / "train.py").write_text('raise SystemExit("no purchases to train on")\n')
        (work / "run_job.py").write_text((REPO / "labs/5-custom-model/solution/run_job.py").read_text())
        failed = subprocess.run(
            [sys.executable, "run_job.py"], cwd=work, env=env, capture_output=True, text=True, timeout=600
        )
        assert failed.returncode != 0 and "no purchases to train on" in failed.stderr, failed.stderr[-2000:]
        check = lab(env, "check", "5")
        assert check.returncode == 1 and "failed" in check.stdout and "no purchases to train on" in check.stdout

        assert lab(env, "solve", "5").returncode == 0
        after = lab(env, "check", "5")
        assert after.returncode == 0 and "PASS challenge 5: a custom training job trained" in after.stdout, (
            after.stdout + after.stderr
        )
        assert "IsolationForest" in after.stdout

        # what the participant's job left, seen through Google's clients: a succeeded pipeline whose model's
        # artifact is the job's AIP_MODEL_DIR (<base output dir>/model) holding model.joblib
        aiplatform = vertex_init(env["HYP_ENDPOINT_URL"], project=env["HYP_PROJECT"])
        [job] = [j for j in aiplatform.CustomTrainingJob.list() if j.state.name == "PIPELINE_STATE_SUCCEEDED"]
        model = aiplatform.Model(job.gca_resource.model_to_upload.name)
        assert model.display_name == "custom-anomaly-detector"
        assert "prediction/sklearn-cpu" in model.gca_resource.container_spec.image_uri
        bucket, _, prefix = model.uri.removeprefix("gs://").partition("/")
        base = job.gca_resource.training_task_inputs["baseOutputDirectory"]["outputUriPrefix"]
        assert model.uri.rstrip("/") == f"{base.rstrip('/')}/model"
        assert storage_client(env["STORAGE_EMULATOR_HOST"]).bucket(bucket).blob(f"{prefix}/model.joblib").exists()
    finally:
        reset = lab(env, "reset", timeout=120)
    assert reset.returncode == 0, reset.stderr
