"""The endpoint's HTTP contract against an in-test model (no MLflow): Vertex, MLflow shapes, errors."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient

from services.common import names
from services.common.processes import wait_for
from services.endpoint.app import create_app
from services.endpoint.settings import EndpointSettings

PREDICT = names.predict_url("", "hyp-local", "europe-west1", "1")
NORMAL = {"tax": 4.0, "shipping": 5.0, "value": 50.0}
SPIKE = {"tax": 100.0, "shipping": 100.0, "value": 1_000_000.1}


def make_settings(**env: object) -> EndpointSettings:
    values = {"HYP_ENDPOINT_RELOAD_INTERVAL_S": 0, **env}
    return EndpointSettings(**{k: str(v) for k, v in values.items()})


@pytest.fixture
def client(source):
    with TestClient(create_app(make_settings(), source)) as c:
        yield c


def test_vertex_predict_answers_each_instance_with_the_version_that_scored_it(client):
    r = client.post(PREDICT + "?$alt=json;enum-encoding=int", json={"instances": [NORMAL, SPIKE]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["is_anomaly"] for p in body["predictions"]] == [False, True]
    # the workshop's consumer reads predictions[0]["nearest_centroid_id"][0]
    assert [p["nearest_centroid_id"][0] for p in body["predictions"]] == [1, 2]
    assert body["predictions"][0]["score"] == pytest.approx((1 + 0 + 0) ** 0.5)
    assert body["modelVersionId"] == "1" == r.headers["x-model-version"]
    assert body["deployedModelId"] == "1"
    assert body["model"] == "projects/hyp-local/locations/europe-west1/models/purchase-anomaly"
    assert body["modelDisplayName"] == "purchase-anomaly"


def test_positional_instances_are_tax_shipping_value(client):
    by_name = client.post(PREDICT, json={"instances": [NORMAL, SPIKE]}).json()["predictions"]
    by_position = client.post(PREDICT, json={"instances": [[4.0, 5.0, 50.0], [100, 100, 1_000_000.1]]})
    assert by_position.status_code == 200, by_position.text
    assert by_position.json()["predictions"] == by_name


@pytest.mark.parametrize(
    "path",
    [
        "/v1/projects/other/locations/europe-west1/endpoints/1:predict",
        "/v1/projects/hyp-local/locations/us-central1/endpoints/1:predict",
        "/v1/projects/hyp-local/locations/europe-west1/endpoints/2:predict",
        "/v1/projects/hyp-local/locations/europe-west1/endpoints/2:rawPredict",
    ],
)
def test_unknown_project_location_or_endpoint_is_404_as_on_vertex(client, path):
    r = client.post(path, json={"instances": [NORMAL]})
    assert r.status_code == 404
    assert r.json()["error"]["status"] == "NOT_FOUND"
    assert path.split("/v1/")[1].split(":")[0] in r.json()["error"]["message"]


def test_endpoint_resource_is_what_the_sdk_fetches_first(client):
    r = client.get("/v1/projects/hyp-local/locations/europe-west1/endpoints/1")
    assert r.status_code == 200
    resource = r.json()
    assert resource["name"] == "projects/hyp-local/locations/europe-west1/endpoints/1"
    [deployed] = resource["deployedModels"]
    assert deployed["id"] == "1" and deployed["modelVersionId"] == "1"
    assert deployed["model"].endswith("/models/purchase-anomaly")
    assert client.get("/v1/projects/hyp-local/locations/europe-west1/endpoints/9").status_code == 404
    listed = client.get("/v1/projects/hyp-local/locations/europe-west1/endpoints").json()
    assert [e["name"] for e in listed["endpoints"]] == [resource["name"]]


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"instances": [NORMAL, {"tax": 1.0, "shipping": 2.0}]}, 400, "instances[1].value: missing"),
        ({"instances": [{"tax": "4.0", "shipping": 5.0, "value": 50.0}]}, 400, "instances[0].tax: expected a number"),
        ({"instances": [{"tax": True, "shipping": 5.0, "value": 50.0}]}, 400, "instances[0].tax: expected a number"),
        ({"instances": [{"tax": None, "shipping": 5.0, "value": 50.0}]}, 400, "instances[0].tax: expected a number"),
        ({"instances": []}, 400, "instances: empty"),
        ({"instances": {"tax": 1}}, 400, "instances: expected a list"),
        ({"instances": [[1.0, 2.0]]}, 400, "instances[0]: expected 3 values"),
        ({"instances": [[1.0, "x", 3.0]]}, 400, "instances[0][1] (shipping): expected a number"),
        ({"instances": ["a"]}, 400, "instances[0]: expected an object"),
        ({"instances": [NORMAL, [1, 2, 3]]}, 400, "instances[1]: expected an object"),
        ({"rows": [NORMAL]}, 400, "instances: missing"),
        ([NORMAL], 400, "body: expected a JSON object"),
        ({"instances": [NORMAL], "parameters": [1]}, 400, "parameters: expected an object"),
        ({"instances": [{"tax": 10**400, "shipping": 5.0, "value": 50.0}]}, 400, "instances[0].tax: "),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(client, body, status, names):
    r = client.post(PREDICT, content=json.dumps(body))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert names in error["message"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(client, literal):
    r = client.post(PREDICT, content='{"instances": [{"tax": LIT, "shipping": 1, "value": 2}]}'.replace("LIT", literal))
    assert r.status_code == 400
    assert literal in r.json()["error"]["message"]


@pytest.mark.parametrize("body", [b"", b"{not json", b"\xff\xfe", b'{"instances": [' * 5000])
def test_unparseable_bodies_are_400(client, body):
    r = client.post(PREDICT, content=body)
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("body:")


def test_oversized_batch_and_body_are_refused(source):
    settings = make_settings(HYP_ENDPOINT_MAX_INSTANCES=3, HYP_ENDPOINT_MAX_BODY_BYTES=2048)
    with TestClient(create_app(settings, source)) as c:
        r = c.post(PREDICT, json={"instances": [NORMAL] * 4})
        assert r.status_code == 400
        assert "instances: 4 instances is over the limit of 3" in r.json()["error"]["message"]
        r = c.post(PREDICT, json={"instances": [NORMAL] * 3, "parameters": {"pad": "x" * 3000}})
        assert r.status_code == 413
        assert "over the limit of 2048 bytes" in r.json()["error"]["message"]

        def chunks():  # no Content-Length: the limit holds while streaming
            for _ in range(10):
                yield b" " * 1000

        r = c.post("/invocations", content=chunks())
        assert r.status_code == 413


def test_model_input_errors_are_400_not_500(source):
    """The model's own input checks (models.errors.ModelInputError is a ValueError) answer 400."""
    from services.endpoint.model_source import served

    class Picky:
        def predict(self, frame):
            if (frame["value"] > 1e6).any():
                raise ValueError("value: row 0 is out of the trained range")
            return source.versions["1"].predict(frame)

    source.load = lambda version: served(Picky(), version=version, name="purchase-anomaly")
    with TestClient(create_app(make_settings(), source)) as c:
        assert c.post(PREDICT, json={"instances": [NORMAL]}).status_code == 200
        r = c.post(PREDICT, json={"instances": [SPIKE]})
        assert r.status_code == 400
        assert "value: row 0 is out of the trained range" in r.json()["error"]["message"]


def test_mlflow_invocation_shapes_give_the_same_scores(client):
    rows = [NORMAL, SPIKE]
    expected = client.post("/invocations", json={"dataframe_records": rows})
    assert expected.status_code == 200, expected.text
    predictions = expected.json()["predictions"]
    assert [p["nearest_centroid_id"] for p in predictions] == [1, 2]  # MLflow's plain column
    shapes = [
        {"dataframe_split": {"columns": ["tax", "shipping", "value"], "data": [[4, 5, 50.0], [100, 100, 1e6 + 0.1]]}},
        {"instances": rows},
        {"inputs": rows},
        {"inputs": {"tax": [4.0, 100], "shipping": [5.0, 100], "value": [50.0, 1_000_000.1]}},
    ]
    for shape in shapes:
        r = client.post("/invocations", json=shape)
        assert r.status_code == 200, (shape, r.text)
        assert r.json()["predictions"] == predictions, shape


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"dataframe_split": {"columns": ["tax", "value"], "data": [[1, 2]]}}, "dataframe_split.columns: shipping"),
        ({"dataframe_split": {"columns": ["tax", "shipping", "value"], "data": [[1, 2]]}}, "dataframe_split.data[0]"),
        ({"inputs": {"tax": [1], "shipping": [1, 2], "value": [1]}}, "different lengths"),
        ({"inputs": {"tax": [1], "shipping": ["x"], "value": [1]}}, "inputs.shipping[0]: expected a number"),
        ({"dataframe_records": [NORMAL], "instances": [NORMAL]}, "exactly one of"),
        ({}, "exactly one of"),
    ],
)
def test_bad_mlflow_bodies_are_400_naming_the_field(client, body, names):
    r = client.post("/invocations", json=body)
    assert r.status_code == 400, r.text
    assert names in r.json()["message"]
    assert r.json()["error_code"] == "BAD_REQUEST"


def test_raw_predict_and_the_custom_container_route(source):
    settings = make_settings(AIP_PREDICT_ROUTE="/v1/models/anomaly:predict", AIP_HEALTH_ROUTE="/healthz")
    with TestClient(create_app(settings, source)) as c:
        raw = c.post(PREDICT.replace(":predict", ":rawPredict"), json={"dataframe_records": [SPIKE]})
        assert raw.status_code == 200, raw.text
        assert raw.json() == {"predictions": [raw.json()["predictions"][0]]}
        assert raw.json()["predictions"][0]["nearest_centroid_id"] == [2]
        assert raw.headers["x-vertex-ai-deployed-model-id"] == "1"
        container = c.post("/v1/models/anomaly:predict", json={"instances": [SPIKE]})
        assert container.status_code == 200
        assert container.json() == raw.json()
        assert c.get("/healthz").status_code == 200
        assert c.get("/health").status_code == 200


def test_health_is_503_until_a_model_is_loaded_then_200(source):
    source.alias = None
    with TestClient(create_app(make_settings(), source)) as c:
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "loading"
        r = c.post(PREDICT, json={"instances": [NORMAL]})
        assert r.status_code == 503 and r.json()["error"]["status"] == "UNAVAILABLE"
        source.alias = "1"
        c.app.state.holder.refresh()
        health = c.get("/health").json()
        assert health == {"status": "ok", "model": "purchase-anomaly", "version": "1", "alias": "champion"}


def test_registry_outage_keeps_serving_the_loaded_version(client, source):
    source.fail = ConnectionError("mlflow down")
    assert client.app.state.holder.refresh() is False
    assert "mlflow down" in client.app.state.holder.last_error
    assert client.post(PREDICT, json={"instances": [NORMAL]}).json()["modelVersionId"] == "1"


def test_metrics_count_requests_batches_and_the_served_version(client):
    client.post(PREDICT, json={"instances": [NORMAL] * 7})
    client.post(PREDICT, json={"instances": []})
    text = client.get("/metrics").text
    assert 'hyp_endpoint_requests_total{code="200",route="predict"} 1.0' in text
    assert 'hyp_endpoint_requests_total{code="400",route="predict"} 1.0' in text
    assert 'hyp_endpoint_batch_size_bucket{le="10.0"} 1.0' in text
    assert 'hyp_endpoint_model_version{model="purchase-anomaly",version="1"} 1.0' in text
    assert 'hyp_endpoint_predictions_total{version="1"} 7.0' in text
    assert "hyp_endpoint_request_seconds_bucket" in text


def test_docs_and_openapi_describe_the_routes(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/projects/{project}/locations/{location}/endpoints/{endpoint}:predict" in paths
    assert "/invocations" in paths


def test_alias_move_switches_versions_without_dropping_or_mixing(client, source):
    """Requests keep flowing while the alias flips back and forth; each answer is one whole version."""
    stop = threading.Event()
    swaps = 0

    def flip() -> None:
        nonlocal swaps
        while not stop.is_set():
            source.alias = "2" if source.alias == "1" else "1"
            swaps += client.app.state.holder.refresh()

    flipper = threading.Thread(target=flip)
    flipper.start()
    seen = set()
    try:
        for _ in range(150):
            r = client.post(PREDICT, json={"instances": [NORMAL, NORMAL]})
            assert r.status_code == 200, r.text
            body = r.json()
            scale = {"1": 1.0, "2": 2.0}[body["modelVersionId"]]
            assert [p["score"] for p in body["predictions"]] == pytest.approx([scale, scale])
            seen.add(body["modelVersionId"])
    finally:
        stop.set()
        flipper.join(timeout=10)
    assert swaps > 2
    assert seen == {"1", "2"}
    assert 'hyp_endpoint_model_version{model="purchase-anomaly",version=' in client.get("/metrics").text


def test_background_poll_picks_up_a_moved_alias(source):
    with TestClient(create_app(make_settings(HYP_ENDPOINT_RELOAD_INTERVAL_S=0.05), source)) as c:
        assert c.post(PREDICT, json={"instances": [NORMAL]}).json()["modelVersionId"] == "1"
        source.alias = "2"
        wait_for(
            lambda: c.post(PREDICT, json={"instances": [NORMAL]}).json()["modelVersionId"] == "2",
            10,
            "version 2 served",
            interval=0.01,
        )
        assert source.loads == 2


def test_big_batches_score_off_the_event_loop_with_the_same_result(source):
    rows = [NORMAL, SPIKE] * 300
    with TestClient(create_app(make_settings(HYP_ENDPOINT_INLINE_ROWS=0), source)) as threaded:
        a = threaded.post(PREDICT, json={"instances": rows}).json()["predictions"]
    with TestClient(create_app(make_settings(HYP_ENDPOINT_INLINE_ROWS=10_000), source)) as inline:
        b = inline.post(PREDICT, json={"instances": rows}).json()["predictions"]
    assert a == b and len(a) == 600
