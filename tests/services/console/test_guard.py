"""Cross-site protection of the console's state-changing requests (services/console/guard.py) and the
Host check it is served behind (services/common/serve.py), through the app as served."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.common.serve import host_checked
from services.console.app import create_app
from services.console.guard import refusal
from tests.services.console.conftest import console_settings

pytestmark = pytest.mark.local_only("the console's own protection; Google Cloud's console is not local")

SQL = {"sql": "SELECT 1 AS one"}


@pytest.fixture
def client(tmp_path):
    settings = console_settings(
        HYP_WAREHOUSE_DIR=str(tmp_path),
        HYP_CONSOLE_PROBE_TIMEOUT_S=0.5,
    )
    app = host_checked(create_app(settings), settings)  # as serve() serves it
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c


def test_a_same_origin_request_from_the_page_is_served(client):
    headers = {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}
    answer = client.post("/api/sql", json=SQL, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == [[1]]


def test_a_script_without_browser_headers_is_served(client):
    assert client.post("/api/sql", json=SQL).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status", "named"),
    [
        ({"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 403, "Sec-Fetch-Site: cross-site"),
        ({"Sec-Fetch-Site": "same-site"}, 403, "same-site"),
        ({"Origin": "https://evil.example"}, 403, "evil.example"),
        ({"Origin": "http://127.0.0.1:8001"}, 403, "127.0.0.1:8001"),  # another local port is another origin
        ({"Origin": "null"}, 403, "null"),
    ],
)
def test_a_cross_site_post_is_refused_with_the_reason(client, headers, status, named):
    answer = client.post("/api/sql", json=SQL, headers=headers)
    assert answer.status_code == status and named in answer.json()["error"], answer.text


def test_a_form_post_is_refused_even_without_browser_headers(client):
    """What a cross-site HTML form can send (urlencoded, multipart, text/plain) never reaches an action."""
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"):
        answer = client.post("/api/sql", content=b'{"sql": "SELECT 1"}', headers={"Content-Type": content_type})
        assert answer.status_code == 415 and "application/json" in answer.json()["error"], answer.text


def test_a_cross_site_delete_is_refused(client):
    answer = client.delete("/api/pubsub/topics/anything", headers={"Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403


def test_reads_are_not_blocked(client):
    headers = {"Sec-Fetch-Site": "cross-site"}  # a link followed from elsewhere still opens the page
    assert client.get("/", headers=headers).status_code == 200


def test_a_foreign_host_is_refused_before_the_app(client):
    answer = client.post("/api/sql", json=SQL, headers={"Host": "attacker.example:8000"})
    assert answer.status_code == 400
    assert answer.json()["error"]["host"] == "attacker.example"


def test_refusal_rules():
    assert refusal("GET", {"sec-fetch-site": "cross-site"}) is None
    assert refusal("POST", {"content-type": "application/json; charset=utf-8", "host": "h"}) is None
    assert refusal("POST", {"content-type": "application/json", "origin": "http://h", "host": "h:80"}) is None
    assert refusal("POST", {"content-type": "application/json", "origin": "https://h", "host": "h"}) is not None
    assert refusal("PUT", {"sec-fetch-site": "none"}) is None  # typed by the user
    assert refusal("POST", {}) == (415, refusal("POST", {})[1])  # type: ignore[index]
