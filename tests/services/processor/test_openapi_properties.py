"""Property-based tests of the processor's push API from its OpenAPI document (schemathesis):
any envelope, valid by the schema or not, gets a 2xx or a 4xx, never a 5xx (the endpoint is up)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from services.processor.app import create_app
from services.testing.asgi import serve_in_thread
from tests.services.processor.helpers import RecordingDeadLetter
from tests.services.processor.helpers import settings as processor_settings

schema = schemathesis.openapi.from_dict(create_app(processor_settings(".", "http://127.0.0.1:1")).openapi())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.fixture(scope="module")
def processor_url(endpoint_url, tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("warehouse")
    app = create_app(processor_settings(warehouse, endpoint_url), deadletter=RecordingDeadLetter())
    with serve_in_thread(app) as url:
        yield url


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_envelope_makes_the_processor_answer_5xx(case, processor_url):
    response = case.call(base_url=processor_url, timeout=10)
    assert response.status_code < 500, (case.body, response.text)
