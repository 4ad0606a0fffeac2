"""Fixtures of the processor tests: a real endpoint app (in-test model) served on a free port."""

from __future__ import annotations

import pytest

from services.endpoint.app import create_app
from services.endpoint.settings import EndpointSettings
from services.testing.asgi import serve_in_thread
from tests.services.endpoint.helpers import FakeSource, TinyKMeans


@pytest.fixture(scope="module")
def endpoint_url():
    source = FakeSource({"1": TinyKMeans(1.0)}, alias="1")
    app = create_app(EndpointSettings(HYP_ENDPOINT_RELOAD_INTERVAL_S="0"), source)
    with serve_in_thread(app) as url:
        yield url
