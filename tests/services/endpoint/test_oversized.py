"""A body over the limit gets 413 naming the limit, even from a client that sends ``Connection: close``:
the endpoint reads and drops the rest of the body first (answering with it unread and closing made the
kernel reset the connection, so such a client saw ``Connection reset by peer`` and no status)."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import pytest

from services.endpoint.app import create_app
from services.endpoint.settings import EndpointSettings
from services.testing.asgi import serve_in_thread

BODY = b'{"instances": [' + b'{"tax": 4.9, "shipping": 5.99, "value": 35.43},' * 400_000 + b"{}]}"  # ~20 MB


def _chunked(body: bytes, size: int = 1 << 16) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_huge_body_with_connection_close_gets_413_not_a_reset(source, framing):
    settings = EndpointSettings(HYP_ENDPOINT_RELOAD_INTERVAL_S="0")
    app = create_app(settings, source)
    path = f"/v1/{settings.endpoint_name}:predict"
    if framing == "chunked":
        head, payload = b"Transfer-Encoding: chunked\r\n", _chunked(BODY)
    else:
        head, payload = b"Content-Length: %d\r\n" % len(BODY), BODY
    request = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n" % (path.encode(), head)
    with serve_in_thread(app) as url:
        u = urlparse(url)
        with socket.create_connection((u.hostname, u.port), timeout=30) as s:
            s.sendall(request + payload)  # the whole body goes out, as a plain client sends it
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert f"over the limit of {settings.max_body_bytes} bytes".encode() in rest
