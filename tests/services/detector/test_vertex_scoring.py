"""`hyp detector --scorer vertex`: the detector scores through a real `hyp endpoint` with Beam's own
VertexAIModelHandlerJSON (services/detector/vertex.py), as the Dataflow anomaly-detection guide does."""

from __future__ import annotations

import json
import os

import pytest

from services.common.names import LABEL_SQL
from services.testing.hyp import HypProcess
from services.warehouse.query import query
from tests.services.detector.harness import Resources, publish_events, pull_all, start_detector
from tests.services.detector.helpers import verdict_table

EVENTS = 2000


@pytest.mark.integration
@pytest.mark.timeout(420)
@pytest.mark.gcp_parity("https://cloud.google.com/dataflow/docs/notebooks/run_inference_vertex_ai")
def test_the_detector_scores_through_the_endpoint_with_beams_vertex_handler(pubsub_emulator, champion, tmp_path):
    res = Resources(pubsub_emulator.host, pubsub_emulator.project).create()
    warehouse = tmp_path / "warehouse"
    # the endpoint serves @champion under the detector's project (the :predict URL names both)
    env = {**os.environ, "MLFLOW_TRACKING_URI": champion.tracking_uri, "HYP_PROJECT": res.project}
    endpoint = HypProcess("endpoint", "--host", "127.0.0.1", log_path=tmp_path / "endpoint.log", env=env)
    with endpoint.start(timeout=180):
        det = start_detector(
            res, warehouse, tmp_path, "--scorer", "vertex", "--vertex-api-endpoint", endpoint.url,
            "--vertex-endpoint-id", "1", "--reload-interval", "1",
        )  # fmt: skip
        try:
            det.wait_up()
            publish_events(res, EVENTS, extra=("--anomaly-rate", "value_spike=0.05"))
            assert det.wait_events(EVENTS, 180) >= EVENTS, det.log()[-3000:]
            gauge = det.metrics().get(f'hyp_detector_model_version{{model_version="{champion.version}"}}')
        finally:
            assert det.stop() == 0, det.log()[-3000:]

    verdicts = query(
        warehouse,
        f"""SELECT v.message_id, v.anomaly, v.model_version, v.score, {LABEL_SQL.replace("attributes", "e.attributes")}
                AS labelled
            FROM {verdict_table()} v JOIN dataflow e USING (message_id)""",
    ).to_pylist()
    assert verdicts, det.log()[-3000:]
    assert {v["model_version"] for v in verdicts} == {champion.version}  # Vertex's modelVersionId on every verdict
    assert all(v["score"] is not None for v in verdicts)
    caught = [v for v in verdicts if v["labelled"] and v["anomaly"]]
    assert caught, f"no labelled anomaly detected among {sum(v['labelled'] for v in verdicts)} labelled"
    published = {json.loads(m.data)["message_id"] for m in pull_all(res.host, res.detections_subscription)}
    assert {v["message_id"] for v in caught} <= published  # detections reached hyp-detections
    assert gauge == 1  # /metrics names the version the endpoint answered with
