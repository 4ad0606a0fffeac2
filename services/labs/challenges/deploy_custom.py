"""Challenge 6: deploy challenge 5's model beside (or instead of) the k-means on challenge 2's endpoint with a
traffic split; the check reads the split through the SDK and sees each model with traffic answer."""

from __future__ import annotations

import math

from services.common import names
from services.labs.challenges import NotYet, custom_model, deploy, kmeans
from services.labs.challenges.common import copy_solution, copy_template
from services.labs.runtime import ensure_mlflow, ensure_vertex, log, run_script
from services.labs.settings import LabSettings

SCRIPT = "deploy_custom.py"
INSTANCES = [[8.4, 4.99, 40.0], [0.0, 0.0, 1000000.10]]  # rows of [tax, shipping, value]: both models take them
MISS = 1e-6  # the chance that a model with traffic is never drawn in the check's requests, at most
MAX_REQUESTS = 400


def start(s: LabSettings) -> None:
    ensure_mlflow(s)
    deploy.start(s)
    try:
        deploy.check(s)
    except NotYet:
        log("your k-means is not deployed yet: applying challenge 3's solution first")
        deploy.solve(s)
    if custom_model.candidate(s) is None:
        log("no custom model of yours yet: applying challenge 5's solution first")
        custom_model.start(s)
        custom_model.solve(s)
    ensure_vertex(s)
    copy_template(s, 6)


def requests_for(share: float) -> int:
    """Requests after which a model drawn with probability ``share`` was seen, but with chance MISS."""
    return math.ceil(math.log(MISS) / math.log(1 - share)) if share < 1 else 1


def check(s: LabSettings) -> str:
    target = deploy.participant_endpoint(s)
    custom = custom_model.candidate(s)
    if custom is None:
        raise NotYet("there is no custom model of yours yet: do challenge 5 first")
    mine = deploy.deployed_of(s, target, custom.resource_name)
    if not mine:
        raise NotYet(
            f"{custom.display_name} is not deployed to {target.display_name} with traffic "
            f"(split {target.traffic_split}): complete and run `python {SCRIPT}`"
        )
    split = {k: v for k, v in target.traffic_split.items() if v > 0}
    n = min(MAX_REQUESTS, requests_for(min(split.values()) / 100))
    seen = deploy.predictions(target, n, INSTANCES)
    missing = [d for d in split if d not in seen and requests_for(split[d] / 100) <= MAX_REQUESTS]
    if missing:
        raise NotYet(f"deployed models {missing} have traffic {split} but answered none of {n} predictions")
    kmeans_model = names.model(s.project, s.location, kmeans.MODEL)
    beside = "beside the k-means" if deploy.deployed_of(s, target, kmeans_model) else "instead of the k-means"
    return (
        f"{custom.display_name} is deployed to {target.display_name} {beside}, split {split}; "
        f"{n} predictions through the SDK were answered by {dict(seen)}"
    )


def solve(s: LabSettings) -> None:
    ensure_mlflow(s)
    ensure_vertex(s)
    run_script(s, copy_solution(s, 6) / SCRIPT)
