"""A small asyncio HTTP/1.1 client for push delivery: POST with keep-alive connections, nothing else.

httpx's AsyncClient cost about 1.7 ms of CPU per push request here (its pool checks every
connection for expiry on each request), which at 200 msg/s was most of the emulator's CPU; this
client costs a small fraction of that. It speaks just what push needs: one POST, a status code,
the response body read (Content-Length, chunked, or until close) and discarded, connections reused
while the server keeps them open. Idle connections the server closes drop out of the pool when
asyncio sees the close (no timers). ``max_connections`` bounds requests in flight (each holds one
connection); idle connections are kept up to the same number.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
from urllib.parse import urlsplit

_Key = tuple[str, str, int]  # scheme, host, port
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class HttpError(Exception):
    """The request failed before a response (connect error, reset, malformed response)."""


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class PostClient:
    """POST bytes to http(s) URLs over pooled keep-alive connections (one event loop)."""

    def __init__(self, max_connections: int = 2000) -> None:
        self.max_connections = max_connections
        self.slots = asyncio.Semaphore(max_connections)
        self.idle: dict[_Key, deque[_Conn]] = {}
        self.targets: dict[str, tuple[_Key, str, bytes]] = {}  # url -> (key, path, Host header)
        self._ssl: ssl.SSLContext | None = None

    def _target(self, url: str) -> tuple[_Key, str, bytes]:
        target = self.targets.get(url)
        if target is None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise HttpError(f"not an http(s) URL: {url!r}")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            host = parts.netloc.rsplit("@", 1)[-1]
            target = ((parts.scheme, parts.hostname, port), path, host.encode())
            if len(self.targets) < 1000:
                self.targets[url] = target
        return target

    async def _connect(self, key: _Key) -> _Conn:
        scheme, host, port = key
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            reader, writer = await asyncio.open_connection(host, port, ssl=context, limit=1 << 20)
        except OSError as exc:
            raise HttpError(f"cannot connect to {host}:{port}: {exc}") from exc
        return _Conn(reader, writer)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """Send one POST; returns the status code. Raises HttpError when there is no response."""
        key, path, host = self._target(url)
        head = [b"POST ", path.encode(), b" HTTP/1.1\r\nHost: ", host, b"\r\nContent-Length: "]
        head.append(str(len(body)).encode())
        for name, value in headers.items():
            if _TOKEN.fullmatch(name):  # attribute keys become header names: nothing that breaks the request
                value = value.replace("\r", " ").replace("\n", " ")
                head += [b"\r\n", name.encode(), b": ", value.encode("utf-8")]
        head.append(b"\r\n\r\n")
        request = b"".join(head) + body
        async with self.slots:
            pool = self.idle.setdefault(key, deque())
            while pool:
                conn = pool.pop()  # the most recently used: the least likely to have been closed
                if not conn.usable():
                    conn.close()
                    continue
                try:
                    status, keep = await self._exchange(conn, request)
                except _StaleConnection:
                    conn.close()
                    continue  # the server closed it while idle: try another (the request was not seen)
                except BaseException:
                    conn.close()
                    raise
                self._release(key, conn, keep)
                return status
            conn = await self._connect(key)
            try:
                status, keep = await self._exchange(conn, request)
            except _StaleConnection as exc:
                conn.close()
                raise HttpError("connection closed without a response") from exc
            except BaseException:
                conn.close()
                raise
            self._release(key, conn, keep)
            return status

    def _release(self, key: _Key, conn: _Conn, keep: bool) -> None:
        pool = self.idle[key]
        if keep and len(pool) < self.max_connections and conn.usable():
            pool.append(conn)
        else:
            conn.close()

    async def _exchange(self, conn: _Conn, request: bytes) -> tuple[int, bool]:
        """Write the request, read the whole response; (status, connection reusable)."""
        reader, writer = conn.reader, conn.writer
        try:
            writer.write(request)
            await writer.drain()
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _StaleConnection from None
                raise HttpError("connection closed mid-response") from None
            lines = raw.decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            try:
                status = int(rest[:3])
            except ValueError:
                raise HttpError(f"malformed status line: {lines[0][:80]!r}") from None
            fields: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    fields[name.strip().lower()] = value.strip()
            connection = fields.get("connection", "").lower()
            keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
            if 100 <= status < 200:  # interim (102 Processing acks): the final answer is not awaited
                return status, False
            if status in (204, 304):
                return status, keep
            if "chunked" in fields.get("transfer-encoding", "").lower():
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                            pass
                        break
                    await reader.readexactly(size + 2)
            elif "content-length" in fields:
                await reader.readexactly(int(fields["content-length"]))
            else:
                await reader.read()  # until the server closes
                keep = False
            return status, keep
        except _StaleConnection:
            raise
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise _StaleConnection from exc  # a fresh connection turns this into HttpError
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        for pool in self.idle.values():
            while pool:
                pool.pop().close()


class _StaleConnection(ConnectionError):
    """A reused connection was closed by the server before it answered."""
