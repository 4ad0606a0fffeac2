"""Cross-site request protection for the console's state-changing requests (ASGI middleware).

The console binds to 127.0.0.1, but any page open in the same browser can make the browser send it a
request (a form posted to ``http://127.0.0.1:8000/api/...``). The Host check (services/common/hosts.py,
applied by services/common/serve.py) stops DNS rebinding; this stops the other half, a cross-site
request under the console's own name. A request that is not GET, HEAD or OPTIONS is refused when:

- ``Sec-Fetch-Site`` is present and is neither ``same-origin`` nor ``none`` (every current browser sends
  it; ``none`` is a request the user typed), 403;
- ``Origin`` is present and is not the console's own origin (scheme, the request's Host, port), 403;
- it is a POST whose body is not ``application/json``, 415: a cross-site HTML form can only send
  ``application/x-www-form-urlencoded``, ``multipart/form-data`` or ``text/plain``, and a cross-site
  ``fetch`` with a JSON body needs a CORS preflight that the console never grants. PUT, PATCH and DELETE
  are preflighted whatever their body.

Clients that are not browsers (scripts, tests) send neither header and pass with a JSON body. The
refusal is JSON ``{"error": "..."}`` naming the reason, as every other console error.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_SITE_FETCH = frozenset({"same-origin", "none"})
JSON_TYPE = "application/json"


def refusal(method: str, headers: dict[str, str], scheme: str = "http") -> tuple[int, str] | None:
    """(status, reason) when this request must be refused, else None. ``headers`` have lower-case names."""
    if method.upper() in SAFE_METHODS:
        return None
    site = headers.get("sec-fetch-site")
    if site is not None and site.lower() not in SAME_SITE_FETCH:
        return 403, f"cross-site request refused (Sec-Fetch-Site: {site})"
    origin = headers.get("origin")
    if origin is not None and not _same_origin(origin, headers.get("host", ""), scheme):
        return 403, f"cross-site request refused (Origin {origin!r} is not this console)"
    if method.upper() == "POST":
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != JSON_TYPE:
            shown = media or "none"
            return 415, f"a state-changing request must send {JSON_TYPE} (got {shown}): a cross-site form cannot"
    return None


def _same_origin(origin: str, host: str, scheme: str) -> bool:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (sandboxed frames, file://) and anything odd
    default = "443" if parts.scheme == "https" else "80"
    return parts.scheme == scheme and _with_port(parts.netloc, default) == _with_port(host, default)


def _with_port(netloc: str, default: str) -> str:
    netloc = netloc.strip().lower()
    has_port = netloc.rsplit("]", 1)[-1].count(":") == 1 if netloc.startswith("[") else ":" in netloc
    return netloc if has_port else f"{netloc}:{default}"


class CrossSiteGuard:
    """ASGI middleware: state-changing HTTP requests that :func:`refusal` refuses never reach ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            refused = refusal(scope["method"], headers, scope.get("scheme", "http"))
            if refused is not None:
                status, reason = refused
                body = json.dumps({"error": reason}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
