"""The orchestrator reads the champion (version, tags, creation time) from MLflow's REST API on a tracking
server, against a real `hyp mlflow`: the same answers MLflow's client gives, without importing it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from services.orchestrator.modelops import ModelsPackageOps
from tests.services.orchestrator.conftest import make_settings

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[3]


def _ops(tmp_path: Path, uri: str, name: str, alias: str = "champion") -> ModelsPackageOps:
    return ModelsPackageOps(make_settings(tmp_path, mlflow_tracking_uri=uri, model_name=name, model_alias=alias))


def test_champion_over_rest_matches_the_client(tmp_path, mlflow_server):
    from mlflow import MlflowClient

    uri, name = mlflow_server.tracking_uri, f"rest-{uuid.uuid4().hex[:8]}"
    ops = _ops(tmp_path, uri, name)
    # no such model yet
    assert ops.champion_version() is None and ops.champion_tags() == {} and ops.champion_created() is None
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment(name))  # a version's source must lie in a run's artifacts
    source = f"{run.info.artifact_uri}/model"
    client.create_registered_model(name)
    first = client.create_model_version(name, source, run_id=run.info.run_id, tags={"hyp.window_end": "x"})
    # the model, no alias yet
    assert ops.champion_version() is None and ops.champion_tags() == {}
    second = client.create_model_version(name, source, run_id=run.info.run_id, tags={"hyp.window_start": "a b"})
    client.set_registered_model_alias(name, "champion", second.version)
    expected = client.get_model_version(name, second.version)
    assert ops.champion_version() == str(second.version) != str(first.version)
    assert ops.champion_tags() == dict(expected.tags) == {"hyp.window_start": "a b"}
    assert ops.champion_created() == datetime.fromtimestamp(expected.creation_timestamp / 1000)
    # another alias of the same model: not there
    assert _ops(tmp_path, uri, name, alias="other").champion_version() is None


def test_champion_over_rest_does_not_import_mlflow(tmp_path, mlflow_server):
    code = (
        "import sys\n"
        "from services.orchestrator.modelops import ModelsPackageOps\n"
        "from tests.services.orchestrator.conftest import make_settings\n"
        "ops = ModelsPackageOps(make_settings(__import__('pathlib').Path(sys.argv[2]), mlflow_tracking_uri=sys.argv[1],"
        " model_name='no-such-model'))\n"
        "print(ops.champion_tags(), 'mlflow' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, mlflow_server.tracking_uri, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["{}", "False"]


def test_champion_over_rest_unreachable_server_raises(tmp_path):
    """A sensor's tick reports the failure (sensors.tick logs it) rather than reading "no champion"."""
    import httpx

    from services.common.processes import free_port

    ops = _ops(tmp_path, f"http://127.0.0.1:{free_port()}", "any")
    with pytest.raises(httpx.HTTPError):
        ops.champion_tags()
