"""Lab 5 as on Vertex: ``aiplatform.CustomTrainingJob`` (a training script, a prebuilt training image) run by
`hyp endpoint` as a local process that saves its artifact to ``AIP_MODEL_DIR`` on `hyp storage`; the model it
uploads is deployed and answers ``:predict`` (lab 6)."""

from __future__ import annotations

import textwrap

import pytest

from services.testing.vertex import SKLEARN_IMAGE

pytestmark = [pytest.mark.integration]

TRAINING_IMAGE = "europe-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-0:latest"

# what a participant writes for Vertex: train, save model.joblib under AIP_MODEL_DIR (a gs:// folder)
SCRIPT = textwrap.dedent(
    """
    import argparse, os
    import joblib
    import numpy as np
    from google.cloud import storage
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser()
    parser.add_argument("--flip", action="store_true")
    args = parser.parse_args()
    if os.environ.get("FAIL"):
        raise SystemExit("no training data: " + os.environ["FAIL"])
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(X, 1 - y if args.flip else y)
    joblib.dump(model, "model.joblib")
    bucket, _, prefix = os.environ["AIP_MODEL_DIR"].removeprefix("gs://").partition("/")
    storage.Client().bucket(bucket).blob(prefix + "model.joblib").upload_from_filename("model.joblib")
    print("saved to", os.environ["AIP_MODEL_DIR"])
    """
)


@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/training/code-requirements")
def test_a_custom_training_job_trains_uploads_and_its_model_is_deployed(aiplatform, tmp_path):
    script = tmp_path / "task.py"
    script.write_text(SCRIPT)
    job = aiplatform.CustomTrainingJob(
        display_name="lab5-training",
        script_path=str(script),
        container_uri=TRAINING_IMAGE,
        model_serving_container_image_uri=SKLEARN_IMAGE,
    )
    model = job.run(model_display_name="lab5-model", args=["--flip"], replica_count=1)
    assert job.state.name == "PIPELINE_STATE_SUCCEEDED"
    assert model.uri.endswith("/model") and model.uri.startswith("gs://")
    endpoint = aiplatform.Endpoint.create(display_name="lab5")
    try:
        model.deploy(endpoint=endpoint)
        response = endpoint.predict(instances=[[3.0, 3.0], [-3.0, -3.0]])
        assert response.predictions == [0, 1]  # --flip reached the script: labels inverted
    finally:
        endpoint.undeploy_all()
        endpoint.delete()
        model.delete()


@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/training/code-requirements")
def test_a_training_script_that_fails_fails_the_job_with_its_output(aiplatform, tmp_path):
    script = tmp_path / "task.py"
    script.write_text(SCRIPT)
    job = aiplatform.CustomTrainingJob(
        display_name="lab5-failing",
        script_path=str(script),
        container_uri=TRAINING_IMAGE,
        model_serving_container_image_uri=SKLEARN_IMAGE,
    )
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 1.*no training data: table missing"):
        job.run(environment_variables={"FAIL": "table missing"}, replica_count=1)
    assert job.state.name == "PIPELINE_STATE_FAILED"
    assert aiplatform.Model.list(filter='display_name="lab5-failing"') == []
