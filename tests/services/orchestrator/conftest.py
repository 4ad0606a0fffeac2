from __future__ import annotations

from datetime import datetime

import pytest

from services.orchestrator.settings import OrchestratorSettings
from tests.services.orchestrator.helpers import synthetic_purchases


def make_settings(tmp_path, **overrides) -> OrchestratorSettings:
    base = {
        "data_dir": tmp_path / "orch",
        "warehouse_dir": tmp_path / "warehouse",
        "retry_backoff_s": 0.01,
        "min_rows": 100,
        "window_wait_s": 0.0,
        "endpoint_url": None,
        "detector_metrics_url": None,
        "webhook_url": None,
        "candidates": ["threshold", "other"],
    }
    return OrchestratorSettings(_env_file=None).model_copy(update={**base, **overrides})


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """A file-backed MLflow tracking store (sqlite), shared by the fast tests; no server needed."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def settings_for(tmp_path, tracking_uri):
    return lambda **overrides: make_settings(tmp_path, mlflow_tracking_uri=tracking_uri, **overrides)


@pytest.fixture
def warehouse_with_purchases(tmp_path):
    """1,000 labelled purchases, two minutes of event time."""
    synthetic_purchases(tmp_path / "warehouse", 1000, start=datetime(2026, 11, 22, 8, 0, 0), seconds_apart=0.12)
    return tmp_path / "warehouse"
