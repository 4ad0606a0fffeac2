"""Against a real `hyp mlflow` server: register, gate, promote, reject, roll back, load and score."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from models import registry, training
from services.testing.hyp import run_hyp as hyp

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_champion_loads_in_a_fresh_process_and_scores(champion) -> None:
    code = (
        "import json, sys; from models.registry import load_champion;"
        "m, v = load_champion(sys.argv[1]);"
        "import pandas as pd;"
        "out = m.predict(pd.DataFrame({'tax': [8.4, 100.0], 'shipping': [4.9, 0.0], 'value': [40.0, 1000000.1]}));"
        "print(json.dumps({'version': v, 'rows': out.to_dict(orient='records')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, champion.tracking_uri], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["version"] == champion.version
    first, spike = payload["rows"]
    assert set(first) == {"score", "is_anomaly", "nearest_centroid_id", "normalized_distance"}  # k-means champion
    assert spike["is_anomaly"] is True and spike["score"] > first["score"]


def test_gate_promotes_a_better_challenger_rejects_a_worse_one_and_rolls_back(
    mlflow_server, purchases: pd.DataFrame, held_out: pd.DataFrame
) -> None:
    name = f"purchase-anomaly-{uuid.uuid4().hex[:8]}"
    uri = mlflow_server.tracking_uri
    c = registry.client(uri)
    watcher = registry.ChampionWatcher(uri, name)
    assert watcher.poll() is None

    def train(kind: str, params: dict | None = None):
        trained = training.fit(kind, purchases, params)
        return training.log_and_register(trained, held_out, tracking_uri=uri, experiment="tests", model_name=name)

    first = train("kmeans")
    assert first.promoted and first.version == "1" and "no champion yet" in first.reason
    assert watcher.poll() == "1"

    better = train("envelope")
    assert better.promoted, better.reason
    assert registry.champion_version(c, name) == better.version == "2"
    assert watcher.poll() == "2" and watcher.poll() is None

    worse = train("kmeans", {"num_clusters": 2, "contamination": 0.2})
    assert not worse.promoted and "does not beat" in worse.reason
    assert registry.champion_version(c, name) == "2"  # registered, but @champion did not move
    version = c.get_model_version(name, worse.version)
    assert version.tags["model_kind"] == "kmeans" and "cluster_mapping" in version.tags
    assert float(version.tags["threshold"]) > 0 and version.tags["eval_set"] == training.fingerprint(held_out)

    event = registry.rollback(c, name)
    assert (event.previous, event.version) == ("2", "1")
    assert registry.champion_version(c, name) == "1"
    assert [e.action for e in registry.history(c, name)] == ["bootstrap", "promote", "rollback"]
    with pytest.raises(registry.RegistryError, match="no earlier champion"):
        registry.rollback(c, name)

    listing = hyp("models", "--tracking-uri", uri, "--name", name, "list")
    assert listing.returncode == 0 and "envelope" in listing.stdout and "champion" in listing.stdout
    assert hyp("models", "--tracking-uri", uri, "--name", name, "promote", "2").returncode == 0
    assert registry.champion_version(c, name) == "2"
    bad = hyp("models", "--tracking-uri", uri, "--name", name, "promote", "99")
    assert bad.returncode == 2 and "has no version 99" in bad.stderr


def test_bad_input_registers_nothing(mlflow_server, champion, tmp_path: Path) -> None:
    c = registry.client(mlflow_server.tracking_uri)
    before = len(c.search_model_versions("name='purchase-anomaly'"))
    rows = pd.DataFrame({"tax": [1.0] * 300, "value": [5.0] * 300})
    rows.to_csv(tmp_path / "no_shipping.csv", index=False)
    cases = [
        (["--data", str(tmp_path / "no_shipping.csv")], "missing column(s): shipping"),
        (["--model", "xgboost", "--generate", "300"], "unknown model 'xgboost'"),
        (["--generate", "50"], "training set has 50 rows"),
    ]
    for args, message in cases:
        result = hyp("train", "--promote", "--tracking-uri", mlflow_server.tracking_uri, "--eval-rows", "500", *args)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert len(c.search_model_versions("name='purchase-anomaly'")) == before
    assert registry.champion_version(c) == champion.version


def test_ensure_champion_is_idempotent(champion) -> None:
    result = hyp("models", "--tracking-uri", champion.tracking_uri, "ensure-champion")
    assert result.returncode == 0 and f"is v{champion.version}; nothing to do" in result.stdout
