"""What a run needs from the models package, behind one small interface.

:class:`ModelOps` is the seam: the runner never imports ``models`` itself. :class:`ModelsPackageOps`
adapts the models engineer's training, evaluation, gate and registry functions to it; it holds no
training logic of its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from models.settings import ModelSettings
    from services.orchestrator.settings import OrchestratorSettings


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
    def champion_version(self) -> str | None:
        from models.registry import champion_version

        return champion_version(self.client, self.settings.model_name, self.settings.model_alias)

    def champion_tags(self) -> dict[str, str]:
        version = self.champion_version()
        if version is None:
            return {}
        return dict(self.client.get_model_version(self.settings.model_name, version).tags)

    def champion_created(self) -> datetime | None:
        version = self.champion_version()
        if version is None:
            return None
        created = self.client.get_model_version(self.settings.model_name, version).creation_timestamp
        return datetime.fromtimestamp(created / 1000)

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
