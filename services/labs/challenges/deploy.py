"""Challenge 3: deploy your k-means by moving @champion; the endpoint must report that version."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from services.common.processes import wait_for
from services.labs import registry
from services.labs.challenges import NotYet, endpoint, kmeans
from services.labs.runtime import ensure_endpoint, ensure_mlflow, log
from services.labs.settings import LabSettings


def start(s: LabSettings) -> None:
    endpoint.start(s)
    ensure_endpoint(s)


def served_version(s: LabSettings) -> str:
    return str(endpoint.resource(s)["deployedModels"][0]["modelVersionId"])


def check_deployed(s: LabSettings, want: registry.Version | None, what: str, hint: str, wait_s: float = 10.0) -> str:
    if want is None:
        raise NotYet(f"there is no {what} to deploy yet: {hint}")
    champion = registry.champion(s)
    if champion != str(want.version):
        raise NotYet(
            f"{s.model_name}@{s.model_alias} is v{champion}, your {what} is v{want.version}: "
            f"move the alias (`hyp models promote {want.version}`)"
        )
    seen = [served_version(s)]

    def follows() -> bool:
        seen[0] = served_version(s)
        return seen[0] == champion

    with contextlib.suppress(TimeoutError):  # the endpoint checks the alias every few seconds
        wait_for(follows, wait_s, "the endpoint to serve the champion", interval=0.5)
    served = seen[0]
    if served != champion:
        raise NotYet(f"@{s.model_alias} is v{champion} but the endpoint still serves v{served} after {wait_s:.0f} s")
    body = endpoint.predict(s)
    if str(body["modelVersionId"]) != champion:
        raise NotYet(f":predict answered with v{body['modelVersionId']}, not v{champion}")
    return f"the endpoint serves your {what} v{champion}, and :predict says so"


def deploy(s: LabSettings, pick: Callable[[LabSettings], registry.Version | None], what: str) -> None:
    ensure_mlflow(s)
    want = pick(s)
    if want is None:
        raise NotYet(f"no {what} to deploy")
    log(f"$ hyp models promote {want.version}")
    registry.promote(s, want.version, f"hyp lab: deploy the {what}")
    ensure_endpoint(s)


def check(s: LabSettings) -> str:
    return check_deployed(s, kmeans.candidate(s), "k-means", "do challenge 1 first")


def solve(s: LabSettings) -> None:
    deploy(s, kmeans.candidate, "k-means")
