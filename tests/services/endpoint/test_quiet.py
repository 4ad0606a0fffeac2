"""What the endpoint costs when nothing (or a batch) happens: one model call per batch, no
per-request log lines, a server loop that wakes once a second, a modest alias poll."""

from __future__ import annotations

import logging
import socket
import threading

import httpx
from fastapi.testclient import TestClient

from services.common import names
from services.common.processes import wait_for
from services.common.serve import TICK_S, quiet_server
from services.endpoint.app import create_app
from services.endpoint.settings import EndpointSettings
from tests.services.endpoint.helpers import FakeSource, TinyKMeans

PREDICT = names.predict_url("", "hyp-local", "europe-west1", "1")


def test_a_batch_is_one_vectorised_model_call_and_requests_log_nothing_at_info(caplog):
    model = TinyKMeans()
    app = create_app(EndpointSettings(HYP_ENDPOINT_RELOAD_INTERVAL_S="0"), FakeSource({"1": model}, alias="1"))
    rows = [{"tax": float(i % 9), "shipping": 4.0, "value": 20.0 + i} for i in range(500)]
    with TestClient(app) as client:
        before = model.calls  # the warm-up row
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            for _ in range(20):
                r = client.post(PREDICT, json={"instances": rows})
                assert r.status_code == 200 and len(r.json()["predictions"]) == 500
    assert model.calls == before + 20
    loud = [r for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("services.endpoint")]
    assert loud == []


def test_the_alias_poll_is_modest_by_default():
    assert 10 <= EndpointSettings.model_fields["reload_interval_s"].default <= 30


def test_the_quiet_server_answers_with_a_date_and_stops_on_request():
    import uvicorn

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = quiet_server(uvicorn.Config(app, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()

    def started() -> bool:
        assert thread.is_alive(), "the server's thread ended before it started"
        return bool(server.started)

    wait_for(started, 20, "the quiet server to start", interval=0.05)
    r = httpx.get(f"http://127.0.0.1:{sock.getsockname()[1]}/", trust_env=False)
    assert r.text == "ok" and r.headers["date"].endswith("GMT")
    server.should_exit = True
    thread.join(timeout=10 * TICK_S)
    assert not thread.is_alive()
