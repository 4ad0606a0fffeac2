"""Property-based tests of the endpoint's HTTP API from its own OpenAPI document (schemathesis):
whatever the generated body, valid by the schema or not, the answer is never a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from services.endpoint.app import create_app
from services.endpoint.settings import EndpointSettings
from services.testing.asgi import serve_in_thread
from tests.services.endpoint.helpers import FakeSource, TinyKMeans

RESOURCE = {"project": "hyp-local", "location": "europe-west1", "endpoint": "1"}


@pytest.fixture(scope="module")
def served():
    app = create_app(_settings(), FakeSource({"1": TinyKMeans()}, alias="1"))
    with serve_in_thread(app) as url:
        yield app, url


def _settings() -> EndpointSettings:
    return EndpointSettings(HYP_ENDPOINT_RELOAD_INTERVAL_S="0")


# the document of an app that is built but not started (nothing runs at create_app)
schema = schemathesis.openapi.from_dict(create_app(_settings(), FakeSource({}, alias=None)).openapi())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_endpoint_answer_5xx(case, served):
    _, url = served
    if case.path_parameters and "endpoint" in case.path_parameters and case.method == "POST":
        case.path_parameters = {**case.path_parameters, **RESOURCE}  # reach the body checks, not the 404
    response = case.call(base_url=url, timeout=10)
    assert response.status_code < 500, (case.body, response.text)
