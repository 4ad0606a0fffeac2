"""Challenge 3: deploy challenge 1's k-means (Vertex model `anomaly_detection`) to challenge 2's endpoint with
``model.deploy(endpoint=...)``; the check reads the deployment and predicts through the SDK."""

from __future__ import annotations

from collections import Counter
from typing import Any

from services.common import names
from services.labs.challenges import NotYet, endpoint, kmeans
from services.labs.challenges.common import copy_solution, copy_template
from services.labs.runtime import ensure_mlflow, ensure_vertex, log, run_script
from services.labs.settings import LabSettings

SCRIPT = "deploy.py"


def start(s: LabSettings) -> None:
    ensure_mlflow(s)
    ensure_vertex(s)
    if endpoint.candidate(s) is None:
        log("no endpoint of yours yet: applying challenge 2's solution first")
        endpoint.start(s)
        endpoint.solve(s)
    copy_template(s, 3)


def participant_endpoint(s: LabSettings) -> Any:
    found = endpoint.candidate(s)
    if found is None:
        raise NotYet("there is no endpoint of yours yet: do challenge 2 first")
    return found


def deployed_of(s: LabSettings, target: Any, model: str) -> list[Any]:
    """The deployments of ``model`` (a Vertex model resource name) on ``target`` that get traffic."""
    split = target.traffic_split
    return [d for d in target.list_models() if d.model == model and split.get(d.id, 0) > 0]


def predictions(target: Any, n: int, instances: list[Any]) -> Counter[str]:
    """``n`` predictions through the SDK: how many each deployed model answered (NotYet on a bad answer)."""
    from google.api_core import exceptions

    seen: Counter[str] = Counter()
    for _ in range(n):
        try:
            response = target.predict(instances=instances)
        except exceptions.GoogleAPICallError as exc:
            raise NotYet(f"endpoint.predict failed: {exc}") from None
        if len(response.predictions) != len(instances):
            raise NotYet(f"{len(instances)} instances got {len(response.predictions)} predictions")
        seen[response.deployed_model_id] += 1
    return seen


def check(s: LabSettings) -> str:
    target = participant_endpoint(s)
    model = names.model(s.project, s.location, kmeans.MODEL)
    mine = deployed_of(s, target, model)
    if not mine:
        raise NotYet(
            f"{target.display_name} has no deployment of {kmeans.MODEL} with traffic "
            f"(deployed: {[d.model for d in target.list_models()] or 'nothing'}): complete and run `python {SCRIPT}`"
        )
    answer = target.predict(instances=endpoint.INSTANCES)
    first = answer.predictions[0]
    if not isinstance(first, dict) or not {"is_anomaly", "normalized_distance"} <= set(first):
        raise NotYet(f"the k-means should answer is_anomaly and normalized_distance; it answered {first}")
    flagged = [bool(p["is_anomaly"]) for p in answer.predictions]
    return (
        f"{kmeans.MODEL} v{mine[0].model_version_id} is deployed to {target.display_name} "
        f"({target.traffic_split}); endpoint.predict flags {flagged} for {endpoint.INSTANCES}"
    )


def solve(s: LabSettings) -> None:
    ensure_mlflow(s)
    ensure_vertex(s)
    run_script(s, copy_solution(s, 3) / SCRIPT)
