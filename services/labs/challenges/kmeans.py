"""Challenge 1: k-means trained with SQL over the warehouse, registered as a version of purchase-anomaly."""

from __future__ import annotations

from services.labs import registry
from services.labs.challenges import NotYet
from services.labs.challenges.common import (
    copy_solution,
    copy_template,
    purchases_in_warehouse,
    sample_rows,
)
from services.labs.runtime import ensure_mlflow, log, read_state, run_hyp, update_state
from services.labs.settings import LabSettings

SQL_FILE = "train.sql"
MIX = "view_item=0.45,add_to_cart=0.25,purchase=0.3"


def ensure_data(s: LabSettings) -> None:
    have = purchases_in_warehouse(s)
    if have >= s.events // 10:
        log(f"the warehouse ({s.warehouse_dir}) holds {have} purchases")
        return
    args = ["loadgen", "--to", "parquet", "--out", str(s.warehouse_dir), "--count", str(s.events), "--max"]
    run_hyp(s, [*args, "--mix", MIX, "--seed", "7", "--run-id", "lab-data", "--no-progress"])
    log(f"the warehouse ({s.warehouse_dir}) now holds {purchases_in_warehouse(s)} purchases")


def start(s: LabSettings) -> None:
    ensure_mlflow(s)
    ensure_data(s)
    copy_template(s, 1)
    update_state(s, baseline_1=registry.newest_version(s))


def train(s: LabSettings, model: str, sql_path, *params: str) -> None:
    args = ["train", "--model", model, "--sql", sql_path.read_text(), "--eval-rows", "5000"]
    for p in params:
        args += ["--param", p]
    run_hyp(s, [*args, "--tracking-uri", s.mlflow_tracking_uri, "--warehouse-dir", str(s.warehouse_dir)])


def verify_scores(s: LabSettings, version: registry.Version, columns: tuple[str, ...]) -> str:
    out = registry.scores(s, version.version, sample_rows(s))
    missing = [c for c in ("score", "is_anomaly", *columns) if c not in out.columns]
    if missing:
        raise NotYet(f"v{version.version} loads but its answer lacks {', '.join(missing)}")
    if out["score"].isna().all():
        raise NotYet(f"v{version.version} answers only empty scores")
    return f"{len(out)} rows scored, {int(out['is_anomaly'].sum())} flagged"


def candidate(s: LabSettings) -> registry.Version | None:
    return registry.latest(s, registry.KMEANS, after=int(read_state(s).get("baseline_1", 0)))


def check(s: LabSettings) -> str:
    v = candidate(s)
    if v is None:
        raise NotYet(
            f"no k-means version of {s.model_name} registered since the challenge started "
            f"(MLflow {s.mlflow_tracking_uri}); train one with `hyp train --model kmeans --sql ...`"
        )
    scored = verify_scores(s, v, ("nearest_centroid_id", "normalized_distance"))
    return f"{s.model_name} v{v.version} (kmeans, f1 {v.tags.get('metric.f1', '?')}) is registered and scores: {scored}"


def solve(s: LabSettings) -> None:
    ensure_mlflow(s)
    ensure_data(s)
    folder = copy_solution(s, 1)
    train(s, "kmeans", folder / SQL_FILE, "num_clusters=4")
