"""Hand-encoded protobuf for the hot path: pull responses built from stored message bytes.

``PullResponse`` and ``StreamingPullResponse`` both carry ``repeated ReceivedMessage
received_messages = 1``; ``ReceivedMessage`` is ``ack_id = 1`` (string), ``message = 2``
(PubsubMessage) and ``delivery_attempt = 3`` (int32). Building those bytes directly avoids
parsing and re-serializing every stored message.
"""

from __future__ import annotations


def varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def received_message(ack_id: bytes, message: bytes, delivery_attempt: int) -> bytes:
    """One length-delimited field 1 (received_messages) holding a ReceivedMessage."""
    body = b"\x0a" + varint(len(ack_id)) + ack_id + b"\x12" + varint(len(message)) + message
    if delivery_attempt:
        body += b"\x18" + varint(delivery_attempt)
    return b"\x0a" + varint(len(body)) + body
