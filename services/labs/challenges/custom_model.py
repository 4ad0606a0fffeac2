"""Challenge 5: train a custom model (a pyod detector or the Keras autoencoder) and register it."""

from __future__ import annotations

from services.labs import registry
from services.labs.challenges import NotYet, kmeans
from services.labs.challenges.common import copy_solution, copy_template
from services.labs.runtime import ensure_mlflow, read_state, update_state
from services.labs.settings import LabSettings


def start(s: LabSettings) -> None:
    ensure_mlflow(s)
    kmeans.ensure_data(s)
    copy_template(s, 5)
    update_state(s, baseline_5=registry.newest_version(s))


def candidate(s: LabSettings) -> registry.Version | None:
    return registry.latest(s, registry.CUSTOM, after=int(read_state(s).get("baseline_5", 0)))


def check(s: LabSettings) -> str:
    v = candidate(s)
    if v is None:
        raise NotYet(
            f"no custom version of {s.model_name} ({', '.join(registry.CUSTOM)}) registered since the challenge "
            f"started; train one with `hyp train --model iforest --sql ...` (or autoencoder)"
        )
    scored = kmeans.verify_scores(s, v, ())
    return (
        f"{s.model_name} v{v.version} ({v.kind}, f1 {v.tags.get('metric.f1', '?')}, "
        f"threshold {v.tags.get('threshold', '?')}) is registered and scores: {scored}"
    )


def solve(s: LabSettings) -> None:
    ensure_mlflow(s)
    kmeans.ensure_data(s)
    folder = copy_solution(s, 5)
    kmeans.train(s, "iforest", folder / "train.sql", "n_estimators=100")
