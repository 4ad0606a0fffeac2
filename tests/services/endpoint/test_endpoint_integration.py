"""The endpoint with the real MLflow registry (session fixtures): the SDK call, and a hot switch.

The hot-switch test moves an alias of its own (``endpoint-test``), never ``@champion``, so
other tests sharing the session's MLflow server are not disturbed.
"""

from __future__ import annotations

import httpx
import pytest

from services.common import names
from services.common.processes import wait_for
from services.endpoint.app import create_app
from services.endpoint.model_source import MlflowSource
from services.endpoint.settings import EndpointSettings
from services.testing.asgi import serve_in_thread
from services.testing.vertex import vertex_endpoint

pytestmark = pytest.mark.integration
PREDICT = names.predict_url("", "hyp-local", "europe-west1", "1")
NORMAL = {"tax": 7.6, "shipping": 4.99, "value": 40.0}
SPIKE = {"tax": 7.6, "shipping": 4.99, "value": 1_000_000.1}


def test_vertex_sdk_predict_against_the_registered_champion(champion):

    settings = EndpointSettings(MLFLOW_TRACKING_URI=champion.tracking_uri, HYP_ENDPOINT_RELOAD_INTERVAL_S="0")
    app = create_app(settings, MlflowSource(champion.tracking_uri, champion.model_name, "champion"))
    with serve_in_thread(app, timeout_s=120) as url:
        endpoint = vertex_endpoint(url)
        response = endpoint.predict(instances=[NORMAL, SPIKE])
        assert response.model_version_id == champion.version
        normal, spike = response.predictions
        assert (normal["is_anomaly"], spike["is_anomaly"]) == (False, True)
        assert spike["score"] > normal["score"]
        # k-means: BigQuery ML's columns, nearest_centroid_id in the workshop's list shape
        assert len(spike["nearest_centroid_id"]) == 1 and "normalized_distance" in spike
        batch = httpx.post(url + PREDICT, json={"instances": [NORMAL] * 1000}, timeout=30)
        assert batch.status_code == 200 and len(batch.json()["predictions"]) == 1000


def test_alias_move_switches_the_served_version_without_a_failed_request(champion):
    from models.registry import client

    c = client(champion.tracking_uri)
    alias = "endpoint-test"
    current = c.get_model_version(champion.model_name, champion.version)
    # a second version of the same logged model (MLflow 3 names the logged model in the source)
    model_id = getattr(current, "model_id", None) or current.source.rsplit("/", 1)[-1]
    moved = c.create_model_version(champion.model_name, current.source, run_id=current.run_id, model_id=model_id)
    c.set_registered_model_alias(champion.model_name, alias, champion.version)
    settings = EndpointSettings(HYP_ENDPOINT_RELOAD_INTERVAL_S="0.2", HYP_MODEL_ALIAS=alias)
    app = create_app(settings, MlflowSource(champion.tracking_uri, champion.model_name, alias))
    try:
        with serve_in_thread(app, timeout_s=120) as url, httpx.Client(base_url=url, timeout=30) as http:
            first = http.post(PREDICT, json={"instances": [NORMAL]})
            assert first.json()["modelVersionId"] == champion.version
            c.set_registered_model_alias(champion.model_name, alias, moved.version)
            versions: list[str] = []

            def moved_over() -> bool:
                r = http.post(PREDICT, json={"instances": [NORMAL, SPIKE]})
                assert r.status_code == 200, r.text  # no request fails while the new version loads
                versions.append(r.json()["modelVersionId"])
                return versions[-1] == str(moved.version)

            wait_for(moved_over, 60, f"version {moved.version} served", interval=0.01)
            assert set(versions) <= {champion.version, str(moved.version)}
            assert f'version="{moved.version}"' in http.get("/metrics").text
    finally:
        c.delete_registered_model_alias(champion.model_name, alias)
