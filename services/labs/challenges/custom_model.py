"""Challenge 5: a custom model trained as on Vertex: ``aiplatform.CustomTrainingJob(...).run(...)`` runs the
training script (it saves ``model.joblib``, Vertex's prebuilt-container format, into ``AIP_MODEL_DIR`` on
Cloud Storage) and registers that folder as a model for the prebuilt scikit-learn image. The check finds the
job through the SDK (a training pipeline created since the challenge started), the model it uploaded, and
loads the artifact that model points at from Cloud Storage, as the serving image would."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from services.labs import sdk
from services.labs.challenges import NotYet, kmeans
from services.labs.challenges.common import copy_solution, copy_template, sample_rows
from services.labs.runtime import ensure_bigquery, ensure_mlflow, ensure_vertex, read_state, run_script, update_state
from services.labs.settings import LabSettings

DISPLAY_NAME = "custom-anomaly-detector"
ARTIFACT = "model.joblib"


def models(s: LabSettings) -> list[Any]:
    from google.api_core import exceptions

    try:
        return list(sdk.vertex(s).Model.list())
    except exceptions.GoogleAPICallError as exc:
        raise NotYet(f"Vertex's models.list at {s.endpoint_url} failed: {exc}") from None


def jobs(s: LabSettings) -> list[Any]:
    """The custom training jobs (training pipelines) the endpoint server knows (aiplatform.CustomTrainingJob)."""
    from google.api_core import exceptions

    try:
        return list(sdk.vertex(s).CustomTrainingJob.list())
    except exceptions.GoogleAPICallError as exc:
        raise NotYet(f"Vertex's trainingPipelines.list at {s.endpoint_url} failed: {exc}") from None


def start(s: LabSettings) -> None:
    ensure_mlflow(s)
    kmeans.ensure_data(s)
    ensure_bigquery(s)
    ensure_vertex(s)
    copy_template(s, 5)
    update_state(s, jobs_before_5=[j.resource_name for j in jobs(s)])


def new_jobs(s: LabSettings) -> list[Any]:
    """The custom training jobs created since `hyp lab start 5`, newest first."""
    before = set(read_state(s).get("jobs_before_5", []))
    mine = [j for j in jobs(s) if j.resource_name not in before]
    return sorted(mine, key=lambda j: j.create_time, reverse=True)


def trained_model(job: Any) -> Any | None:
    """The model a succeeded job uploaded for a prebuilt scikit-learn image (aiplatform.Model), or None."""
    from google.cloud import aiplatform

    if job.state.name != "PIPELINE_STATE_SUCCEEDED" or not job.gca_resource.model_to_upload.name:
        return None
    model = aiplatform.Model(job.gca_resource.model_to_upload.name)
    return model if "sklearn" in (model.gca_resource.container_spec.image_uri or "") else None


def candidate(s: LabSettings) -> Any | None:
    """The model of the newest custom training job since `hyp lab start 5` that uploaded one (aiplatform.Model)."""
    for job in new_jobs(s):
        model = trained_model(job)
        if model is not None:
            return model
    return None


def load_artifact(s: LabSettings, uri: str) -> Any:
    """``gs://bucket/prefix``'s model.joblib, downloaded with the storage client and loaded as the image does."""
    import joblib

    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    blob = sdk.storage(s).bucket(bucket).blob(f"{prefix.rstrip('/')}/{ARTIFACT}" if prefix else ARTIFACT)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ARTIFACT
        try:
            blob.download_to_filename(str(path))
        except Exception as exc:  # NotFound, or a bucket the SDK did not stage into
            raise NotYet(f"could not read {uri}/{ARTIFACT} from Cloud Storage: {exc}") from None
        return joblib.load(path)


def check(s: LabSettings) -> str:
    model = candidate(s)
    if model is None:
        ran = new_jobs(s)
        if not ran:
            raise NotYet(
                "no custom training job since the challenge started: complete train.py and run_job.py "
                "(aiplatform.CustomTrainingJob(...).run()), then run `python run_job.py`"
            )
        last = ran[0]
        if last.state.name == "PIPELINE_STATE_FAILED":
            raise NotYet(f"the custom training job `{last.display_name}` failed: {last.gca_resource.error.message}")
        if last.state.name != "PIPELINE_STATE_SUCCEEDED":
            raise NotYet(f"the custom training job `{last.display_name}` is {last.state.name}: wait for job.run()")
        raise NotYet(
            f"the custom training job `{last.display_name}` succeeded but uploaded no model for a prebuilt "
            "scikit-learn image: give CustomTrainingJob model_serving_container_image_uri=SKLEARN_IMAGE"
        )
    estimator = load_artifact(s, model.uri)
    rows = sample_rows(s)[["tax", "shipping", "value"]].to_numpy(dtype=float)
    try:
        answers = estimator.predict(rows)
    except Exception as exc:  # whatever the participant's estimator raises
        raise NotYet(f"{model.uri}/{ARTIFACT} loads but cannot predict [tax, shipping, value] rows: {exc}") from None
    if len(answers) != len(rows):
        raise NotYet(f"{len(rows)} rows got {len(answers)} predictions from {model.uri}/{ARTIFACT}")
    return (
        f"a custom training job trained {model.display_name} ({model.resource_name}, version {model.version_id}) "
        f"and registered it; its artifact {model.uri}/{ARTIFACT} ({type(estimator).__name__}) predicts "
        f"{len(rows)} purchases"
    )


def solve(s: LabSettings) -> None:
    ensure_mlflow(s)
    kmeans.ensure_data(s)
    ensure_bigquery(s)
    ensure_vertex(s)
    folder = copy_solution(s, 5)
    run_script(s, folder / "run_job.py")  # train.py runs inside the job
