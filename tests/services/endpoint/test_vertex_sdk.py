"""Google's own Vertex AI SDK (google-cloud-aiplatform) against the local endpoint, config changed only.

Parity: the request the SDK sends (GET Endpoint, then POST :predict?$alt=json;enum-encoding=int)
and the response fields it reads are Vertex AI's REST contract; checked with the installed SDK.
"""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials

from services.endpoint.app import create_app
from services.endpoint.settings import EndpointSettings
from services.testing.asgi import serve_in_thread
from services.testing.vertex import vertex_endpoint


def workshop_call(api_endpoint: str) -> object:
    """The workshop's inference call; only init's api_endpoint/api_transport/credentials differ."""
    from google.cloud import aiplatform

    aiplatform.init(
        project="hyp-local",
        location="europe-west1",
        api_endpoint=api_endpoint,
        api_transport="rest",
        credentials=AnonymousCredentials(),
    )
    endpoint = aiplatform.Endpoint(
        endpoint_name="projects/hyp-local/locations/europe-west1/endpoints/1",
        project="hyp-local",
        location="europe-west1",
    )
    return endpoint.predict(
        instances=[{"tax": 4.0, "shipping": 5.0, "value": 50.0}, {"tax": 100.0, "shipping": 100.0, "value": 1e6}]
    )


def test_vertex_sdk_endpoint_predict_gets_the_predictions(source):
    app = create_app(EndpointSettings(HYP_ENDPOINT_RELOAD_INTERVAL_S="0"), source)
    with serve_in_thread(app) as url:
        response = workshop_call(url)
    assert response.model_version_id == "1"
    assert response.deployed_model_id == "1"
    assert response.model_resource_name == "projects/hyp-local/locations/europe-west1/models/purchase-anomaly"
    first, second = response.predictions
    # the workshop's consumer: predictions[0]["nearest_centroid_id"][0] == 1 (protobuf numbers are doubles)
    assert first["nearest_centroid_id"][0] == 1 and second["nearest_centroid_id"][0] == 2
    assert (first["is_anomaly"], second["is_anomaly"]) == (False, True)


def test_vertex_sdk_sees_bad_input_as_invalid_argument(source):
    from google.api_core import exceptions

    app = create_app(EndpointSettings(HYP_ENDPOINT_RELOAD_INTERVAL_S="0"), source)
    with serve_in_thread(app) as url:
        endpoint = vertex_endpoint(url)
        with pytest.raises(exceptions.BadRequest, match=r"instances\[0\]\.value: missing"):
            endpoint.predict(instances=[{"tax": 1.0, "shipping": 2.0}])
        # the SDK fetches the Endpoint resource lazily; what it reads from it is there
        assert endpoint.traffic_split == {"1": 100}
        [deployed] = endpoint.list_models()
        assert (deployed.id, deployed.model_version_id) == ("1", "1")
        with pytest.raises(exceptions.NotFound):
            vertex_endpoint(url, "77").predict(instances=[{}])


def test_vertex_sdk_gets_an_error_naming_the_limit_for_a_huge_batch(source):
    """Over the body limit the client gets a status and the limit, not ``Connection reset by peer``."""
    from google.api_core import exceptions

    settings = EndpointSettings(HYP_ENDPOINT_RELOAD_INTERVAL_S="0")
    app = create_app(settings, source)
    with serve_in_thread(app) as url:
        endpoint = vertex_endpoint(url)
        instances = [{"tax": 4.9, "shipping": 5.99, "value": 35.43}] * 40_000  # ~2 MB: over Vertex's 1.5 MB
        with pytest.raises(exceptions.GoogleAPICallError) as caught:
            endpoint.predict(instances=instances)
    assert caught.value.code == 413
    assert f"over the limit of {settings.max_body_bytes} bytes" in caught.value.message
