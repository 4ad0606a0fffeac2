"""What a run needs from the models package, behind one small interface.

:class:`ModelOps` is the seam: the runner never imports ``models`` itself. :class:`ModelsPackageOps`
adapts the models engineer's training, evaluation, gate and registry functions to it; it holds no
training logic of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from models.settings import ModelSettings
    from services.orchestrator.settings import OrchestratorSettings


REGISTRY_TIMEOUT_S = 30.0
# MLflow's error codes for a missing model or alias (models.registry treats the same ones as "not found")
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})


@dataclass(frozen=True)
class Champion:
    version: str
    tags: dict[str, str]
    created_ms: int  # the version's creation_timestamp, epoch milliseconds


class ModelOps(Protocol):
    def candidates(self) -> list[str]: ...

    def train(self, candidate: str, frame: pd.DataFrame) -> Any: ...

    def evaluate(self, model: Any, holdout: pd.DataFrame) -> dict[str, float]: ...

    def evaluate_version(self, version: str, holdout: pd.DataFrame) -> dict[str, float]: ...

    def rank(self, metrics: dict[str, float]) -> float: ...

    def gate(self, challenger: dict[str, float], champion: dict[str, float] | None) -> tuple[bool, str]: ...

    def register(self, model: Any, holdout: pd.DataFrame, tags: dict[str, Any]) -> str: ...

    def promote(self, version: str) -> None: ...

    def champion_version(self) -> str | None: ...

    def champion_tags(self) -> dict[str, str]: ...

    def champion_created(self) -> datetime | None: ...


class ModelsPackageOps:
    """The real seam: the models package's registry, gate, training and evaluation (imported lazily)."""

    def __init__(self, settings: OrchestratorSettings) -> None:
        self.settings = settings
        self._client: MlflowClient | None = None
        self._loaded: dict[str, Any] = {}  # the champion model, loaded once per version

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from models.registry import client

            self._client = client(self.settings.mlflow_tracking_uri)
        return self._client

    def _model_settings(self) -> ModelSettings:
        from models.settings import get_settings

        return get_settings()

    # ---- registry ------------------------------------------------------------------------------
    def _champion(self) -> Champion | None:
        """The version the alias points at, with its tags and creation time; None when the model or the
        alias does not exist.

        The sensors ask every tick. On a tracking server this is one request to MLflow's REST API
        (``GET /api/2.0/mlflow/registered-models/alias``), so MLflow's client library, 37 MiB resident,
        is imported only when a run trains or registers; a file or database store (the tests') goes
        through the client."""
        uri, name, alias = self.settings.mlflow_tracking_uri, self.settings.model_name, self.settings.model_alias
        if not uri.startswith(("http://", "https://")):
            from models.registry import champion_version

            version = champion_version(self.client, name, alias)
            if version is None:
                return None
            mv = self.client.get_model_version(name, version)
            return Champion(str(mv.version), dict(mv.tags), int(mv.creation_timestamp))
        import httpx

        url = uri.rstrip("/") + "/api/2.0/mlflow/registered-models/alias"
        response = httpx.get(url, params={"name": name, "alias": alias}, timeout=REGISTRY_TIMEOUT_S)
        if response.status_code != 200:
            try:
                code = response.json().get("error_code")
            except ValueError:
                code = None
            if code in NOT_FOUND_CODES:  # no such model (404), no such alias (400): no champion yet
                return None
            raise RuntimeError(f"MLflow {url}: HTTP {response.status_code} {response.text[:200]}")
        mv = response.json()["model_version"]
        tags = {t["key"]: t.get("value", "") for t in mv.get("tags", [])}
        return Champion(str(mv["version"]), tags, int(mv["creation_timestamp"]))

    def champion_version(self) -> str | None:
        champion = self._champion()
        return None if champion is None else champion.version

    def champion_tags(self) -> dict[str, str]:
        champion = self._champion()
        return {} if champion is None else champion.tags

    def champion_created(self) -> datetime | None:
        champion = self._champion()
        return None if champion is None else datetime.fromtimestamp(champion.created_ms / 1000)

    def promote(self, version: str) -> None:
        from models.registry import set_champion

        set_champion(
            self.client,
            version,
            action="promote",
            reason="hyp orchestrator: challenger won the gate",
            name=self.settings.model_name,
            alias=self.settings.model_alias,
        )

    def gate(self, challenger: dict[str, float], champion: dict[str, float] | None) -> tuple[bool, str]:
        from models.registry import gate

        ms = self._model_settings()
        return gate(challenger, champion, ms.promotion_metric, ms.promotion_min_delta)

    def rank(self, metrics: dict[str, float]) -> float:
        return float(metrics.get(self._model_settings().promotion_metric, float("-inf")))

    # ---- training and evaluation: models.training, unchanged ----------------------------------------
    def candidates(self) -> list[str]:
        from models.detectors import MODEL_KINDS

        return list(MODEL_KINDS)

    def train(self, candidate: str, frame: pd.DataFrame) -> Any:
        from models.training import fit

        ms = self._model_settings()
        return fit(candidate, frame, seed=ms.seed, min_rows=min(ms.min_training_rows, len(frame)))

    def evaluate(self, model: Any, holdout: pd.DataFrame) -> dict[str, float]:
        from models.training import evaluate_model

        metrics: dict[str, float] = evaluate_model(model.model, holdout)
        model.metrics = metrics  # log_and_register reuses them
        return metrics

    def evaluate_version(self, version: str, holdout: pd.DataFrame) -> dict[str, float]:
        from models import registry
        from models.training import evaluate_model

        if version not in self._loaded:
            name = self.settings.model_name
            self._loaded = {
                version: registry.unwrap(registry.load_version(self.settings.mlflow_tracking_uri, name, version))
            }
        return evaluate_model(self._loaded[version], holdout)

    def register(self, model: Any, holdout: pd.DataFrame, tags: dict[str, Any]) -> str:
        """Log and register the winner without moving any alias (promote="never"); tag it with its window."""
        from models.training import log_and_register

        ms = self._model_settings()
        result = log_and_register(
            model,
            holdout,
            tracking_uri=self.settings.mlflow_tracking_uri,
            experiment=ms.experiment,
            model_name=self.settings.model_name,
            promote="never",
            metric=ms.promotion_metric,
            extra_params={k: v for k, v in tags.items() if k == "hyp.orchestrator_run"},
            run_name=f"{model.kind}-orchestrator-{tags.get('hyp.orchestrator_run', '')}",
        )
        for key, value in tags.items():
            self.client.set_model_version_tag(self.settings.model_name, result.version, key, str(value))
        return str(result.version)
