"""Challenge 6: deploy the custom model to the same endpoint by moving @champion."""

from __future__ import annotations

from services.labs.challenges import custom_model, deploy
from services.labs.runtime import ensure_endpoint, ensure_mlflow, log
from services.labs.settings import LabSettings


def start(s: LabSettings) -> None:
    ensure_mlflow(s)
    if custom_model.candidate(s) is None:
        log("no custom model of yours yet: applying challenge 5's solution first")
        custom_model.solve(s)
    ensure_endpoint(s)


def check(s: LabSettings) -> str:
    return deploy.check_deployed(s, custom_model.candidate(s), "custom model", "do challenge 5 first")


def solve(s: LabSettings) -> None:
    deploy.deploy(s, custom_model.candidate, "custom model")
