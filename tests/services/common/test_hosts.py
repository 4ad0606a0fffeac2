"""The Host check (DNS rebinding): which names a service answers to, the pure check, the ASGI middleware."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from services.common import hosts

LOCAL = hosts.allowed_names("127.0.0.1")


# --- the names -------------------------------------------------------------------------------------------


def test_a_service_answers_to_the_loopback_names_and_a_specific_bind_address():
    assert LOCAL == {"127.0.0.1", "localhost", "::1"}
    assert hosts.allowed_names("0.0.0.0") == LOCAL
    assert hosts.allowed_names("::") == LOCAL
    assert hosts.allowed_names("[::]") == LOCAL
    assert hosts.allowed_names("192.168.1.20") == LOCAL | {"192.168.1.20"}
    assert hosts.allowed_names("Laptop.Local.") == LOCAL | {"laptop.local"}
    assert hosts.allowed_names("[fe80::1]") == LOCAL | {"fe80::1"}


def test_hyp_allowed_hosts_adds_names_from_a_comma_list():
    assert hosts.allowed_names("0.0.0.0", "processor, 10.0.0.5,,[FD00::2]") == LOCAL | {
        "processor",
        "10.0.0.5",
        "fd00::2",
    }
    assert hosts.allowed_names("0.0.0.0", ["pubsub", " "]) == LOCAL | {"pubsub"}


def test_the_names_follow_a_services_settings(monkeypatch):
    from services.console.settings import ConsoleSettings

    monkeypatch.setenv("HYP_ALLOWED_HOSTS", "console,")
    monkeypatch.setenv("HYP_CONSOLE_HOST", "0.0.0.0")
    settings = ConsoleSettings()
    assert hosts.for_settings(settings) == LOCAL | {"console"}
    assert hosts.for_settings(settings, "10.1.2.3") == LOCAL | {"console", "10.1.2.3"}


# --- the pure check --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "127.0.0.1:18000",
        "127.0.0.1",
        "localhost:8000",
        "LOCALHOST:8000",
        "localhost.:8000",
        "localhost:",
        "[::1]:8000",
        "[::1]",
        b"localhost:8000",
    ],
)
def test_our_own_names_pass_whatever_the_port(header):
    assert hosts.host_allowed(header, LOCAL)


@pytest.mark.parametrize(
    "header",
    [
        "attacker.example:18000",
        "attacker.example",
        "127.0.0.1.attacker.example",
        "localhost.attacker.example:8000",
        "127.0.0.2:8000",
        "0.0.0.0:8000",
        "::1",  # an IPv6 address without brackets is not a Host
        "[::1",
        "[::1]x",
        "[::1]:80x",
        "localhost:80:80",
        "localhost:http",
        "user@localhost",
        "",
        "   ",
        None,
    ],
)
def test_any_other_host_and_a_missing_or_malformed_one_are_refused(header):
    assert not hosts.host_allowed(header, LOCAL)


def test_a_star_allows_any_well_formed_host_but_never_a_missing_one():
    assert hosts.host_allowed("attacker.example:1", {hosts.ANY})
    assert not hosts.host_allowed(None, {hosts.ANY})


def test_refused_answers_400_naming_the_host_and_refuses_two_host_headers():
    assert hosts.refused(["localhost:1"], LOCAL) is None
    status, body = hosts.refused(["Attacker.Example:18000"], LOCAL) or (0, b"")
    assert status == 400
    assert json.loads(body)["error"]["host"] == "attacker.example"
    assert hosts.refused([], LOCAL) is not None
    assert hosts.refused(["localhost", "localhost"], LOCAL) is not None
    assert hosts.refused(["attacker.example"], {hosts.ANY}) is None


# --- the middleware --------------------------------------------------------------------------------------


class App:
    """A real (tiny) ASGI app that records what reached it."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.scopes.append(scope["type"])
        if scope["type"] == "lifespan":
            message = await receive()
            assert message["type"] == "lifespan.startup"
            await send({"type": "lifespan.startup.complete"})
        elif scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"secret"})
        else:
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})


def call(app: Any, scope: dict, incoming: list[dict] | None = None) -> list[dict]:
    """Run one ASGI call; the messages the app sent."""
    sent: list[dict] = []
    queue = list(incoming or [])

    async def receive() -> dict:
        return queue.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def http_scope(*host: bytes) -> dict:
    return {"type": "http", "method": "POST", "path": "/api/sql", "headers": [(b"host", h) for h in host]}


def test_an_allowed_http_request_reaches_the_app():
    app = App()
    sent = call(hosts.HostCheck(app, LOCAL), http_scope(b"127.0.0.1:18000"))
    assert app.scopes == ["http"]
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"secret"


@pytest.mark.parametrize("host", [(b"attacker.example:18000",), (), (b"localhost", b"attacker.example")])
def test_a_refused_http_request_gets_400_and_never_reaches_the_app(host):
    app = App()
    sent = call(hosts.HostCheck(app, LOCAL), http_scope(*host))
    assert app.scopes == []
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 400
    assert (b"content-type", b"application/json") in sent[0]["headers"]
    error = json.loads(sent[1]["body"])["error"]
    assert error["code"] == 400
    assert error["host"] == ("attacker.example" if host == (b"attacker.example:18000",) else None)


def test_the_verdict_for_a_host_is_remembered_and_a_flood_of_names_is_not():
    check = hosts.HostCheck(App(), LOCAL)
    for i in range(1000):
        call(check, http_scope(f"a{i}.example".encode()))
    assert len(check._seen) == hosts._CACHE_MAX
    assert call(check, http_scope(b"a999.example"))[0]["status"] == 400
    assert call(check, http_scope(b"localhost:1"))[0]["status"] == 200


def test_a_websocket_for_another_host_is_denied_before_the_handshake():
    ws = {"type": "websocket", "path": "/ws", "headers": [(b"host", b"attacker.example")]}
    app = App()
    # with the denial-response extension (uvicorn has it): a 400 answer to the handshake
    sent = call(hosts.HostCheck(app, LOCAL), {**ws, "extensions": {"websocket.http.response": {}}})
    assert sent[0] == {
        "type": "websocket.http.response.start",
        "status": 400,
        "headers": sent[0]["headers"],
    }
    assert json.loads(sent[1]["body"])["error"]["host"] == "attacker.example"
    # without it: a close before accept (the server answers the handshake 403)
    assert call(hosts.HostCheck(app, LOCAL), ws) == [{"type": "websocket.close", "code": 1008}]
    assert app.scopes == []
    ok = {**ws, "headers": [(b"host", b"localhost:8000")]}
    assert call(hosts.HostCheck(app, LOCAL), ok, [{"type": "websocket.connect"}]) == [{"type": "websocket.accept"}]
    assert app.scopes == ["websocket"]


def test_the_lifespan_passes_through():
    app = App()
    sent = call(hosts.HostCheck(app, LOCAL), {"type": "lifespan"}, [{"type": "lifespan.startup"}])
    assert app.scopes == ["lifespan"] and sent == [{"type": "lifespan.startup.complete"}]


def test_a_star_leaves_the_app_unwrapped():
    app = App()
    assert hosts.protect(app, {hosts.ANY}) is app
    assert isinstance(hosts.protect(app, LOCAL), hosts.HostCheck)


def test_serve_wraps_every_app_with_the_services_names(monkeypatch):
    from services.common.serve import host_checked
    from services.processor.settings import ProcessorSettings

    monkeypatch.setenv("HYP_ALLOWED_HOSTS", "processor")
    app = App()
    checked = host_checked(app, ProcessorSettings(), "0.0.0.0")
    assert isinstance(checked, hosts.HostCheck) and checked.app is app
    assert checked.allowed == LOCAL | {"processor"}
    monkeypatch.setenv("HYP_ALLOWED_HOSTS", "*")
    assert host_checked(app, ProcessorSettings()) is app
