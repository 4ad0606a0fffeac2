"""Endpoint ``1`` follows the registry alias: the routes that would change it refuse, through one
dependency, with Google's FAILED_PRECONDITION body; other endpoints go on to the resource method."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.endpoint.app import create_app
from tests.services.endpoint.test_app import make_settings

ENDPOINTS = "/v1/projects/hyp-local/locations/europe-west1/endpoints"
CHANGES = [
    ("PATCH", "/1?updateMask=displayName", {"displayName": "x"}),
    ("DELETE", "/1", None),
    ("POST", "/1:deployModel", {"deployedModel": {"model": "purchase-anomaly"}}),
    ("POST", "/1:undeployModel", {"deployedModelId": "1"}),
]


@pytest.fixture
def client(source):
    with TestClient(create_app(make_settings(), source)) as c:
        yield c


@pytest.mark.local_only("endpoint 1 following purchase-anomaly@champion is hyp-local's stack")
@pytest.mark.parametrize(("method", "path", "body"), CHANGES)
def test_changing_endpoint_1_is_refused_naming_the_alias_it_follows(client, method, path, body):
    r = client.request(method, ENDPOINTS + path, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["status"] == "FAILED_PRECONDITION"
    assert "purchase-anomaly@champion" in error["message"] and "follows that alias" in error["message"]


@pytest.mark.local_only("the same routes on an endpoint that does not exist: the dependency lets them through")
@pytest.mark.parametrize(("method", "path", "body"), [(m, p.replace("/1", "/77"), b) for m, p, b in CHANGES])
def test_other_endpoints_reach_the_resource_method(client, method, path, body):
    r = client.request(method, ENDPOINTS + path, json=body)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["status"] == "NOT_FOUND" and "endpoints/77" in r.json()["error"]["message"]
