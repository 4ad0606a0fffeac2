"""The registry as the checks see it: which versions the participant registered, which one is @champion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.detectors import kinds_of
from services.labs.settings import LabSettings

STARTER_TAG = "hyp.lab"  # value "starter": the model `hyp lab start 2` deploys so the endpoint can answer
KMEANS = kinds_of("bigquery-ml")  # challenge 1: BigQuery ML's k-means
CUSTOM = kinds_of("pyod", "keras")  # challenge 5: a custom model (a pyod detector or the Keras autoencoder)


@dataclass(frozen=True)
class Version:
    version: int
    kind: str
    tags: dict[str, str]

    @property
    def starter(self) -> bool:
        return self.tags.get(STARTER_TAG) == "starter"


def client(s: LabSettings) -> Any:
    from models.registry import client as registry_client

    return registry_client(s.mlflow_tracking_uri)


def versions(s: LabSettings) -> list[Version]:
    """Every version of the model, oldest first (empty when the model does not exist yet)."""
    out = []
    for v in client(s).search_model_versions(f"name='{s.model_name}'"):
        tags = dict(v.tags or {})
        out.append(Version(int(v.version), tags.get("model_kind", "?"), tags))
    return sorted(out, key=lambda v: v.version)


def latest(s: LabSettings, kinds: tuple[str, ...], after: int = 0) -> Version | None:
    """The newest participant version (not the starter) of one of ``kinds`` registered after version ``after``."""
    found = [v for v in versions(s) if v.kind in kinds and not v.starter and v.version > after]
    return found[-1] if found else None


def newest_version(s: LabSettings) -> int:
    all_versions = versions(s)
    return all_versions[-1].version if all_versions else 0


def champion(s: LabSettings) -> str | None:
    from models.registry import champion_version

    return champion_version(client(s), s.model_name, s.model_alias)


def promote(s: LabSettings, version: int, reason: str) -> None:
    from models.registry import set_champion

    set_champion(client(s), version, action="manual", reason=reason, name=s.model_name, alias=s.model_alias)


def tag_starter(s: LabSettings, version: str) -> None:
    client(s).set_model_version_tag(s.model_name, version, STARTER_TAG, "starter")


def scores(s: LabSettings, version: int, rows: Any) -> Any:
    """Load one version through the registry and score ``rows``: the frame the model answers."""
    from models.registry import load_version

    model = load_version(s.mlflow_tracking_uri, s.model_name, version)
    return model.predict(rows)
