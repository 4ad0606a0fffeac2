"""Challenge 1: the workshop's BigQuery ML statement, typed as on GCP, through Google's BigQuery client.

``CREATE OR REPLACE MODEL `<project>.ecommerce_sink.anomaly_detection` OPTIONS(MODEL_REGISTRY='VERTEX_AI',
MODEL_TYPE='KMEANS', NUM_CLUSTERS=2) AS SELECT ecommerce.purchase.tax AS tax, ...`` runs against `hyp bigquery`
over the lab's warehouse; MODEL_REGISTRY='VERTEX_AI' registers it in the stack's registry (MLflow), where
challenge 3 deploys it from. The check reads the model with ``client.get_model`` and scores purchases with
``ML.DETECT_ANOMALIES``, both through the client.
"""

from __future__ import annotations

from pathlib import Path

from services.labs import registry, sdk
from services.labs.challenges import NotYet
from services.labs.challenges.common import copy_solution, copy_template, purchases_in_warehouse
from services.labs.runtime import ensure_bigquery, ensure_mlflow, log, read_state, run_hyp, run_script, update_state
from services.labs.settings import LabSettings

DATASET = "ecommerce_sink"
MODEL = "anomaly_detection"  # the workshop's model id; MODEL_REGISTRY='VERTEX_AI' registers it under this id
FEATURES = ("tax", "shipping", "value")
SQL_FILE = "create_model.sql"
PROJECT_PLACEHOLDER = "<project-id>"
MIX = "view_item=0.45,add_to_cart=0.25,purchase=0.3"
PURCHASES_SQL = (
    "SELECT ecommerce.purchase.tax AS tax, ecommerce.purchase.shipping AS shipping, "
    "ecommerce.purchase.value AS value FROM `{project}.ecommerce_sink.cloud_run` WHERE event = 'purchase'"
)


def ensure_data(s: LabSettings) -> None:
    have = purchases_in_warehouse(s)
    if have >= s.events // 10:
        log(f"the warehouse ({s.warehouse_dir}) holds {have} purchases")
        return
    args = ["loadgen", "--to", "parquet", "--out", str(s.warehouse_dir), "--count", str(s.events), "--max"]
    run_hyp(s, [*args, "--mix", MIX, "--seed", "7", "--run-id", "lab-data", "--no-progress"])
    log(f"the warehouse ({s.warehouse_dir}) now holds {purchases_in_warehouse(s)} purchases")


def with_project(s: LabSettings, folder: Path) -> None:
    """Write the lab's project id where the workshop's statements say `<project-id>` (the one edit on GCP too)."""
    for path in folder.glob("*.sql"):
        text = path.read_text()
        if PROJECT_PLACEHOLDER in text:
            path.write_text(text.replace(PROJECT_PLACEHOLDER, s.project))


def model_id(s: LabSettings) -> str:
    return f"{s.project}.{DATASET}.{MODEL}"


def registered(s: LabSettings) -> list[int]:
    """Versions of the Vertex model (an MLflow registered model) the statement registers."""
    return sorted(int(v.version) for v in registry.client(s).search_model_versions(f"name='{MODEL}'"))


def start(s: LabSettings) -> None:
    ensure_mlflow(s)
    ensure_data(s)
    ensure_bigquery(s)
    with_project(s, copy_template(s, 1))
    update_state(s, baseline_1=max(registered(s), default=0))


def candidate(s: LabSettings) -> int | None:
    """The newest version of the model registered since `hyp lab start 1` (None when there is none)."""
    versions = [v for v in registered(s) if v > int(read_state(s).get("baseline_1", 0))]
    return versions[-1] if versions else None


def check(s: LabSettings) -> str:
    from google.api_core import exceptions

    client = sdk.bigquery(s)
    try:
        model = client.get_model(model_id(s))
    except exceptions.NotFound:
        raise NotYet(f"no model {model_id(s)} yet: run your CREATE MODEL (`python bq.py {SQL_FILE}`)") from None
    except exceptions.GoogleAPICallError as exc:
        raise NotYet(f"hyp bigquery at {s.bigquery_url} did not answer get_model: {exc}") from None
    if model.model_type != "KMEANS":
        raise NotYet(f"{MODEL} is a {model.model_type} model; the workshop trains MODEL_TYPE='KMEANS'")
    features = sorted(f.name for f in model.feature_columns)
    if features != sorted(FEATURES):
        raise NotYet(f"{MODEL} learns from {', '.join(features)}; the workshop's features are {', '.join(FEATURES)}")
    run = model.training_runs[-1] if model.training_runs else {}
    clusters = run.get("evaluationMetrics", {}).get("clusteringMetrics", {}).get("clusters", [])
    version = candidate(s)
    if version is None:
        raise NotYet(
            f"{MODEL} is in the dataset but no version was registered since the challenge started: "
            "MODEL_REGISTRY='VERTEX_AI' puts it in the registry, where challenge 3 deploys it from"
        )
    sql = (
        f"SELECT is_anomaly, normalized_distance FROM ML.DETECT_ANOMALIES(MODEL `{model_id(s)}`, "
        f"STRUCT(0.02 AS contamination), ({PURCHASES_SQL.format(project=s.project)} LIMIT 200))"
    )
    try:
        rows = list(client.query_and_wait(sql))
    except exceptions.GoogleAPICallError as exc:
        raise NotYet(f"ML.DETECT_ANOMALIES on {MODEL} failed: {exc}") from None
    flagged = sum(1 for r in rows if r["is_anomaly"])
    return (
        f"{model_id(s)} is a k-means of {len(clusters)} clusters over {', '.join(FEATURES)}, registered as "
        f"Vertex model {MODEL} v{version}; ML.DETECT_ANOMALIES flags {flagged} of {len(rows)} purchases"
    )


def solve(s: LabSettings) -> None:
    ensure_mlflow(s)
    ensure_data(s)
    ensure_bigquery(s)
    folder = copy_solution(s, 1)
    with_project(s, folder)
    run_script(s, folder / "bq.py", SQL_FILE)
