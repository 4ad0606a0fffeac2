"""The one request-body reader of the endpoint: the whole body, bounded, straight from ASGI messages.

An oversized body is read and thrown away up to :data:`DRAIN_MAX_BYTES` before the 413 goes out:
answering with the body unread and then closing (the client sent ``Connection: close``, or the
keep-alive timer fired mid-upload) makes the kernel reset the connection, and the client sees
``Connection reset by peer`` instead of the status. Bodies declared larger than that are answered
at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from services.endpoint.instances import InputError

DRAIN_MAX_BYTES = 64 * 1024 * 1024

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


def too_large(limit: int, declared: int | None = None) -> InputError:
    size = f"{declared} bytes is " if declared is not None else ""
    return InputError(f"body: {size}over the limit of {limit} bytes", status=413)


async def discard(receive: Receive, read: int, more_body: bool = True, bound: int = DRAIN_MAX_BYTES) -> None:
    """Read and drop the rest of a request body (at most ``bound`` bytes in all) so the answer reaches
    the client; ``read`` bytes are already in."""
    while more_body and read <= bound:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        read += len(message.get("body", b""))
        more_body = message.get("more_body", False)


def _declared(value: bytes) -> int:
    """The Content-Length as a number; InputError when it is not one."""
    if not value.isdigit():
        raise InputError("Content-Length: not a number")
    return int(value)


async def receive_body(headers: Iterable[tuple[bytes, bytes]], receive: Receive, limit: int) -> bytes:
    """The whole body, or InputError(413) once it is over ``limit`` bytes (the rest read and dropped)."""
    declared, expect = None, False
    for name, value in headers:
        if name == b"content-length":
            declared = _declared(value)
        elif name == b"expect":
            expect = value.lower() == b"100-continue"
    if declared is not None and declared > limit:
        if not expect and declared <= DRAIN_MAX_BYTES:  # with Expect the client waits: nothing to drain
            await discard(receive, 0)
        raise too_large(limit, declared)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InputError("body: the client went away", status=400)
        chunk = message.get("body", b"")
        size += len(chunk)
        more = message.get("more_body", False)
        if size > limit:
            await discard(receive, size, more)
            raise too_large(limit)
        chunks.append(chunk)
        if not more:
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class RequestBody:
    """A request's body, read when a handler asks for it (after its cheaper checks), at most ``limit``
    bytes: :meth:`read` raises InputError(413) past that."""

    __slots__ = ("_headers", "_receive", "limit")

    def __init__(self, headers: Iterable[tuple[bytes, bytes]], receive: Receive, limit: int) -> None:
        self._headers, self._receive, self.limit = headers, receive, limit

    async def read(self) -> bytes:
        return await receive_body(self._headers, self._receive, self.limit)
