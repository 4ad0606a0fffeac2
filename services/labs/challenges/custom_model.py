"""Challenge 5: training code that saves a scikit-learn artifact (model.joblib, Vertex's prebuilt-container
format), then ``aiplatform.Model.upload`` (the SDK stages the folder in hyp storage). The check finds the
model through the SDK and loads the artifact it points at from Cloud Storage, as the serving image would."""

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


def start(s: LabSettings) -> None:
    ensure_mlflow(s)
    kmeans.ensure_data(s)
    ensure_bigquery(s)
    ensure_vertex(s)
    copy_template(s, 5)
    update_state(s, models_before_5=[m.resource_name for m in models(s)])


def candidate(s: LabSettings) -> Any | None:
    """The newest model uploaded since `hyp lab start 5` for a prebuilt scikit-learn image (aiplatform.Model)."""
    before = set(read_state(s).get("models_before_5", []))
    mine = [
        m
        for m in models(s)
        if m.resource_name not in before and "sklearn" in (m.gca_resource.container_spec.image_uri or "")
    ]
    return max(mine, key=lambda m: m.create_time) if mine else None


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
        raise NotYet(
            "no model uploaded for Vertex's prebuilt scikit-learn image since the challenge started: "
            "run `python train.py`, then complete and run `python upload.py`"
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
        f"{model.display_name} ({model.resource_name}, version {model.version_id}) is in the registry; its artifact "
        f"{model.uri}/{ARTIFACT} ({type(estimator).__name__}) predicts {len(rows)} purchases"
    )


def solve(s: LabSettings) -> None:
    ensure_mlflow(s)
    kmeans.ensure_data(s)
    ensure_bigquery(s)
    ensure_vertex(s)
    folder = copy_solution(s, 5)
    run_script(s, folder / "train.py")
    run_script(s, folder / "upload.py")
