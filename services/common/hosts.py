"""The Host check every hyp HTTP service makes: requests for a name that is not ours are refused.

A web page can make the browser send requests to 127.0.0.1 under a name of its own (DNS rebinding:
``attacker.example`` first resolves to the attacker's server, then to 127.0.0.1); the browser then lets
the page read the answers, since to it they come from ``attacker.example``. What gives such a request
away is its ``Host`` header, which still names ``attacker.example``. So each service answers only
requests whose Host (port ignored) is one of its own names: 127.0.0.1, localhost, [::1], the address it
binds when that is a specific name or address (not 0.0.0.0 or ::), and whatever ``HYP_ALLOWED_HOSTS``
adds (a comma list; compose adds each service's own service name). ``*`` there allows any Host, which
turns the protection off: only for a server behind a proxy that checks Host itself.

A refused request gets 400 with a small JSON body naming the Host, and never reaches the app. 400 is
what RFC 9112 section 3.2 requires for a missing or invalid Host and what Django (``ALLOWED_HOSTS``),
Starlette's ``TrustedHostMiddleware`` and Litestar answer for a Host they do not serve; 421 (Misdirected
Request) tells a client to retry on another connection (browsers do so on their own), which is no use
when no connection of ours serves that name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Collection, Iterable, MutableMapping, Sequence
from typing import Any

ANY = "*"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})  # every interface: not a name anyone is reached by
ENV = "HYP_ALLOWED_HOSTS"

_PORT = re.compile(r"[0-9]*")
_CACHE_MAX = 256  # distinct Host values remembered per server (a flood of made-up names is not cached)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _normal(name: str) -> str:
    """A name as compared: lower case, no IPv6 brackets, no trailing dot of a fully qualified name."""
    name = name.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name[:-1] if name.endswith(".") and name != "." else name


def split_names(value: str | Iterable[str] | None) -> list[str]:
    """The names of a comma list (``"processor, 10.0.0.5"``) or of an iterable, blanks dropped."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [n for n in (_normal(i) for i in items) if n]


def allowed_names(bind_host: str | None, extra: str | Iterable[str] | None = None) -> frozenset[str]:
    """The names a service bound to ``bind_host`` answers to: the loopback names, the bind address
    when it is a specific one, and ``extra`` (``HYP_ALLOWED_HOSTS``; ``*`` allows any)."""
    names = set(LOOPBACK_NAMES)
    bind = _normal(bind_host or "")
    if bind not in WILDCARD_BINDS:
        names.add(bind)
    names.update(split_names(extra))
    return frozenset(names)


def for_settings(settings: Any, bind_host: str | None = None) -> frozenset[str]:
    """:func:`allowed_names` for a service's settings (its ``host``, unless ``bind_host`` is given, and
    its ``allowed_hosts``)."""
    host = bind_host if bind_host is not None else getattr(settings, "host", None)
    return allowed_names(host, getattr(settings, "allowed_hosts", None))


def host_name(host_header: str | bytes | None) -> str | None:
    """The name of a Host header without its port (``"[::1]:8000"`` -> ``"::1"``), lower case; None
    when there is none or it is not ``host[:port]`` (an IPv6 address must be in brackets)."""
    if host_header is None:
        return None
    if isinstance(host_header, bytes):
        host_header = host_header.decode("latin-1")
    value = host_header.strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        if rest and not (rest[0] == ":" and _PORT.fullmatch(rest[1:])):
            return None
    else:
        name, _, port = value.partition(":")
        if not _PORT.fullmatch(port):
            return None
    name = _normal(name)
    return name or None


def host_allowed(host_header: str | bytes | None, allowed: Collection[str]) -> bool:
    """Whether a request with this Host header (its port ignored) is for one of the ``allowed`` names.

    A missing, empty or malformed Host is refused (HTTP/1.1 requires one); ``*`` in ``allowed``
    accepts any well-formed Host (:func:`protect` then leaves the check out altogether).
    """
    name = host_name(host_header)
    if name is None:
        return False
    return ANY in allowed or name in allowed


def refusal(host: str | None) -> tuple[int, bytes]:
    """Status and JSON body of the answer to a refused Host."""
    if host is None:
        message = "missing or malformed Host header"
    else:
        message = f"Host {host!r} is not a name of this server (DNS rebinding protection; see {ENV})"
    body = json.dumps({"error": {"code": 400, "message": message, "host": host}}).encode()
    return 400, body


def refused(values: Sequence[str | bytes], allowed: Collection[str]) -> tuple[int, bytes] | None:
    """For a request's Host header values: None when it may go on, else the (status, body) to answer
    (the request is refused when it has no Host, several, or one not allowed)."""
    if ANY in allowed or (len(values) == 1 and host_allowed(values[0], allowed)):
        return None
    return refusal(host_name(values[0]) if len(values) == 1 else None)


def request_host(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes | None, bool]:
    """(the Host header's value, whether there was exactly one) from ASGI headers."""
    found: bytes | None = None
    count = 0
    for key, value in headers:
        if key == b"host":
            found, count = value, count + 1
    return found, count == 1


class HostCheck:
    """ASGI middleware: http and websocket requests whose Host is not allowed are answered 400 without
    calling ``app``; the lifespan (and anything else) passes through."""

    def __init__(self, app: ASGIApp, allowed: Collection[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed)
        self._seen: dict[bytes, bool] = {}

    def allows(self, host: bytes | None) -> bool:
        if host is None:
            return False
        verdict = self._seen.get(host)
        if verdict is None:
            verdict = host_allowed(host, self.allowed)
            if len(self._seen) < _CACHE_MAX:
                self._seen[host] = verdict
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        host, single = request_host(scope.get("headers") or ())
        if single and self.allows(host):
            await self.app(scope, receive, send)
            return
        name = host_name(host) if single else None
        status, body = refusal(name)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if kind == "http":
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif "websocket.http.response" in (scope.get("extensions") or {}):
            await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:  # a close before accept: the server answers the handshake 403
            await send({"type": "websocket.close", "code": 1008})


def protect(app: ASGIApp, allowed: Collection[str]) -> ASGIApp:
    """``app`` behind the Host check, or ``app`` itself when ``*`` allows any Host."""
    return app if ANY in allowed else HostCheck(app, allowed)


def is_address(name: str | None) -> bool:
    """Whether a Host name is an IP address literal (never a rebinding attack's: that needs a DNS name)."""
    import ipaddress

    try:
        ipaddress.ip_address(name or "")
    except ValueError:
        return False
    return True


def protect_wsgi(app: Callable[..., Any], allowed: Collection[str], *, addresses: bool = False) -> Callable[..., Any]:
    """A WSGI ``app`` (a Prometheus page served by prometheus_client) behind the same Host check; ``addresses``:
    any IP address literal is allowed too (scrapers that reach compose replicas by address)."""
    if ANY in allowed:
        return app

    def checked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        host = environ.get("HTTP_HOST")
        if host is not None and (host_allowed(host, allowed) or (addresses and is_address(host_name(host)))):
            return app(environ, start_response)
        status, body = refusal(host_name(host))
        start_response(
            f"{status} Bad Request", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return checked


def serve_metrics(registry: Any, host: str, port: int, allowed: Collection[str], *, addresses: bool = True) -> Any:
    """prometheus_client's ``start_http_server`` with the Host check (names in ``allowed``, and IP address literals
    unless ``addresses`` is False): ``registry``'s page on ``host:port`` from a daemon thread; returns the server
    (``shutdown()`` stops it)."""
    import threading
    from wsgiref.simple_server import make_server

    from prometheus_client.exposition import ThreadingWSGIServer, _get_best_family, _SilentHandler, make_wsgi_app

    class Server(ThreadingWSGIServer):  # its own class: the address family is set per server, as prometheus_client does
        pass

    Server.address_family, addr = _get_best_family(host, port)  # type: ignore[no-untyped-call]
    server = make_server(
        addr,
        port,
        protect_wsgi(make_wsgi_app(registry), allowed, addresses=addresses),
        Server,
        handler_class=_SilentHandler,
    )
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
    return server
