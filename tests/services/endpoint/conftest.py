"""Fixtures of the endpoint tests (helpers.py holds the in-test model and the registry stand-in)."""

from __future__ import annotations

import pytest

from tests.services.endpoint.helpers import FakeSource, TinyKMeans


@pytest.fixture
def source() -> FakeSource:
    return FakeSource({"1": TinyKMeans(1.0), "2": TinyKMeans(2.0)}, alias="1")
