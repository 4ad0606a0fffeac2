"""The Host check (DNS rebinding): which names a service answers to, the pure check, the ASGI middleware."""

from __future__ import annotations

import asyncio
import functools
import http.client
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.common import hosts
from services.common.processes import free_port, wait_for
from services.testing.hyp import HypProcess

LOCAL = hosts.allowed_names("127.0.0.1")


# --- the names -------------------------------------------------------------------------------------------


def test_a_service_answers_to_the_loopback_names_and_a_specific_bind_address():
    assert sorted(LOCAL) == ["127.0.0.1", "::1", "localhost"]
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


# --- every HTTP service, as a real process ---------------------------------------------------------------
# Raw HTTP with a Host header of our choosing: this is our own protection, not a GCP API contract.

EXTRA_NAME = "hyp-own-name"  # what compose adds: the name the other services reach this one at
REBINDING_SQL = {"sql": "SELECT content FROM read_text('/etc/hostname')"}
START_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Probe:
    """A harmless GET that answers 200 from a name of ours, and a request a rebinding page would want."""

    get: str
    method: str
    path: str
    body: dict = field(default_factory=dict)
    own_names: bool = True  # HYP_ALLOWED_HOSTS applies (MLflow has its own allow-list)


PROBES: dict[str, Probe] = {
    "console": Probe("/health", "POST", "/api/sql", REBINDING_SQL),
    "endpoint": Probe("/metrics", "POST", "/v1/projects/hyp-local/locations/europe-west1/endpoints/1:predict"),
    # uvicorn's worker processes build the app through the endpoint's factory, not serve()
    "endpoint --workers 2": Probe("/metrics", "POST", "/invocations"),
    "processor": Probe("/metrics", "POST", "/", {"message": {"data": "e30="}, "subscription": "s"}),
    "orchestrator": Probe("/runs", "POST", "/runs"),
    "pubsub": Probe("/admin/state", "PUT", "/v1/projects/hyp-local/topics/rebound"),
    "mlflow": Probe(
        "/api/2.0/mlflow/experiments/search?max_results=1",
        "POST",
        "/api/2.0/mlflow/experiments/create",
        {"name": "rebound"},
        own_names=False,
    ),
}


def send(port: int, method: str, path: str, host: str | None, body: dict | None = None) -> tuple[int, bytes]:
    """One request on its own connection with exactly this Host header (none when ``host`` is None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host)
        data = json.dumps(body).encode() if body is not None else b""
        if method != "GET":
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data if method != "GET" else None)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def answers(port: int, path: str) -> bool:
    try:
        return send(port, "GET", path, f"127.0.0.1:{port}")[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def ports(tmp_path_factory, mlflow_server) -> Iterator[dict[str, int]]:
    """console, endpoint (one and two workers), processor, orchestrator and the Pub/Sub emulator as real
    processes on free ports (temp home and warehouse, HYP_ALLOWED_HOSTS=EXTRA_NAME), and the session's
    MLflow server."""
    from tests.fixtures.pubsub import start_emulator, stop_emulator

    work = tmp_path_factory.mktemp("hosts")
    (work / "home").mkdir()
    emulator = start_emulator(work / "pubsub", extra_env={"HYP_ALLOWED_HOSTS": EXTRA_NAME, "HOME": str(work / "home")})
    closed = f"http://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "HOME": str(work / "home"),
        "HYP_ALLOWED_HOSTS": EXTRA_NAME,
        "HYP_WAREHOUSE_DIR": str(work / "warehouse"),
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "MLFLOW_TRACKING_URI": mlflow_server.tracking_uri,
        "HYP_ENDPOINT_URL": closed,
        "HYP_CONSOLE_PUBSUB_URL": emulator.rest_url,
        "HYP_CONSOLE_ENDPOINT_URL": closed,
        "HYP_CONSOLE_PROCESSOR_URL": closed,
        "HYP_CONSOLE_ORCHESTRATOR_URL": closed,
        "HYP_CONSOLE_DETECTOR_METRICS_URL": closed + "/metrics",
        "HYP_ORCH_ENDPOINT_URL": closed,
        "HYP_ORCH_DETECTOR_METRICS_URL": closed + "/metrics",
    }
    extra = {
        "endpoint": ["--reload-interval", "0"],
        "endpoint --workers 2": ["--reload-interval", "0"],
        "orchestrator": ["--no-sensors", "--data-dir", str(work / "orchestrator")],
    }
    started = ("console", "endpoint", "endpoint --workers 2", "processor", "orchestrator")
    found = {name: free_port() for name in started}
    processes = {
        name: HypProcess(
            name,
            "--host",
            "127.0.0.1",
            *extra.get(name, []),
            port=port,
            env=env,
            log_path=work / f"{name.replace(' ', '')}.log",
        )
        for name, port in found.items()
    }
    try:
        for process in processes.values():
            process.start(wait=False)

        def up_or_exited(name: str) -> bool:
            process = processes[name].process
            return process is None or process.poll() is not None or answers(found[name], PROBES[name].get)

        for name, port in found.items():
            wait_for(functools.partial(up_or_exited, name), START_TIMEOUT_S, f"hyp {name} on port {port}")
            assert processes[name].process.poll() is None, processes[name].log()[-3000:]
        found["pubsub"] = int(emulator.rest_url.rsplit(":", 1)[1])
        found["mlflow"] = int(mlflow_server.tracking_uri.rsplit(":", 1)[1])
        yield found
    finally:
        for process in processes.values():
            process.stop()
        stop_emulator(emulator)


@pytest.mark.integration
@pytest.mark.parametrize("service", list(PROBES))
def test_a_request_for_another_name_is_refused(ports, service):
    port, probe = ports[service], PROBES[service]
    for method, path, body in (("GET", probe.get, None), (probe.method, probe.path, probe.body)):
        status, content = send(port, method, path, f"attacker.example:{port}", body)
        assert 400 <= status < 500, (method, path, status, content[:300])
        if probe.own_names:
            assert status == 400
            assert json.loads(content)["error"]["host"] == "attacker.example"
    if probe.own_names:
        assert send(port, "GET", probe.get, None)[0] == 400  # no Host at all


@pytest.mark.integration
def test_the_console_does_not_run_sql_for_a_rebound_page(ports):
    port = ports["console"]
    status, content = send(port, "POST", "/api/sql", f"attacker.example:{port}", REBINDING_SQL)
    hostname = Path("/etc/hostname").read_bytes().strip()
    assert status == 400
    assert not hostname or hostname not in content


@pytest.mark.integration
@pytest.mark.parametrize("service", list(PROBES))
def test_our_own_names_are_served(ports, service):
    port, probe = ports[service], PROBES[service]
    names = ["127.0.0.1", "localhost"] + (["[::1]", EXTRA_NAME] if probe.own_names else [])
    for name in names:
        status, content = send(port, "GET", probe.get, f"{name}:{port}")
        assert status == 200, (name, status, content[:300])


@pytest.mark.integration
def test_a_refused_request_changed_nothing_and_googles_rest_client_still_works(ports):
    """The topic a rebound page tried to create does not exist; Google's Pub/Sub client over REST
    (its Host is 127.0.0.1:PORT) creates, publishes and lists as before."""
    from google.api_core.exceptions import NotFound
    from google.auth.credentials import AnonymousCredentials
    from google.pubsub_v1 import PublisherClient
    from google.pubsub_v1.services.publisher.transports.rest import PublisherRestTransport

    port = ports["pubsub"]
    transport = PublisherRestTransport(host=f"127.0.0.1:{port}", url_scheme="http", credentials=AnonymousCredentials())
    client = PublisherClient(transport=transport)
    with pytest.raises(NotFound):
        client.get_topic(topic="projects/hyp-local/topics/rebound")
    topic = "projects/hyp-local/topics/over-rest"
    assert client.create_topic(name=topic).name == topic
    assert client.publish(topic=topic, messages=[{"data": b"x"}]).message_ids
    assert topic in [t.name for t in client.list_topics(project="projects/hyp-local")]


def test_compose_lets_each_service_answer_to_its_service_name_and_hyp_up_keeps_the_users_names():
    from services.common.settings import CommonSettings
    from services.stack import definition as d

    for s in d.SERVICES:
        env = d.environment(s, "compose", data="/data")
        assert env["HYP_ALLOWED_HOSTS"] == s.name + ",${HYP_ALLOWED_HOSTS:-}"
    processor = d.service("processor")
    local = d.environment(processor, "local", data=".hyp", tunables={"HYP_ALLOWED_HOSTS": "laptop.lan"})
    settings = CommonSettings.model_validate({"HYP_ALLOWED_HOSTS": local["HYP_ALLOWED_HOSTS"]})
    assert hosts.for_settings(settings, "127.0.0.1") == LOCAL | {"laptop.lan"}
    # every name a service is reached at inside compose is one it answers to
    urls = [v for s in d.SERVICES for v in d.environment(s, "compose", data="/data").values() if "://" in v]
    reached = {u.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0] for u in urls}
    by_name = {s.name: s for s in d.SERVICES}
    assert {"pubsub", "mlflow", "endpoint", "processor", "orchestrator"} <= reached
    for name in reached - {"127.0.0.1"}:  # 127.0.0.1: the console's links for the browser on the host
        own = d.environment(by_name[name], "compose", data="/data")["HYP_ALLOWED_HOSTS"].split(",")[0]
        assert own == name


def test_the_metrics_server_refuses_a_foreign_host():
    import httpx
    from prometheus_client import CollectorRegistry, Counter

    from services.common.hosts import allowed_names, serve_metrics

    registry = CollectorRegistry()
    Counter("hyp_probe", "a sample", registry=registry).inc()
    server = serve_metrics(registry, "127.0.0.1", 0, allowed_names("127.0.0.1"))
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        assert "hyp_probe_total 1.0" in httpx.get(url).text
        foreign = httpx.get(url, headers={"Host": "attacker.example"})
        assert foreign.status_code == 400
        assert "attacker.example" in foreign.json()["error"]["message"]
        # an address literal is no rebinding (that needs a name): scrapers reach compose replicas by address
        assert httpx.get(url, headers={"Host": f"172.18.0.5:{server.server_port}"}).status_code == 200
    finally:
        server.shutdown()
