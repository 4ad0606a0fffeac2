"""The JSON resources the API answers with, and the checksums Cloud Storage reports.

Stored metadata holds what is true of a bucket or object (names, generations, times, hashes, user
metadata); links (``selfLink``, ``mediaLink``) are added per request from the address the client used.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import google_crc32c

# Object fields a client may set on upload, patch, copy or compose (the rest the service computes).
WRITABLE = (
    "contentType",
    "contentEncoding",
    "contentDisposition",
    "contentLanguage",
    "cacheControl",
    "metadata",
    "customTime",
)


def now() -> str:
    """RFC 3339 UTC time with milliseconds, as the API writes ``timeCreated``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Hasher:
    """MD5 and CRC32C of a byte stream, base64 as the API reports them (``md5Hash``, ``crc32c``)."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5()
        self.crc = google_crc32c.Checksum()
        self.size = 0

    def update(self, data: bytes) -> None:
        self.md5.update(data)
        self.crc.update(data)
        self.size += len(data)

    @property
    def md5_b64(self) -> str:
        return base64.b64encode(self.md5.digest()).decode()

    @property
    def crc32c_b64(self) -> str:
        return base64.b64encode(self.crc.digest()).decode()


def bucket_json(stored: dict[str, Any], base_url: str) -> dict[str, Any]:
    name = stored["name"]
    return {
        "kind": "storage#bucket",
        "id": name,
        "selfLink": f"{base_url}/storage/v1/b/{name}",
        **stored,
        "metageneration": str(stored["metageneration"]),
        "etag": f"C{stored['metageneration']}",
    }


def object_json(stored: dict[str, Any], base_url: str) -> dict[str, Any]:
    bucket, name, generation = stored["bucket"], stored["name"], stored["generation"]
    quoted = quote(name, safe="")
    return {
        "kind": "storage#object",
        "id": f"{bucket}/{name}/{generation}",
        "selfLink": f"{base_url}/storage/v1/b/{bucket}/o/{quoted}",
        "mediaLink": f"{base_url}/download/storage/v1/b/{bucket}/o/{quoted}?generation={generation}&alt=media",
        **stored,
        "generation": str(generation),
        "metageneration": str(stored["metageneration"]),
        "size": str(stored["size"]),
        "etag": f"C{generation}.{stored['metageneration']}",
    }


def writable(metadata: dict[str, Any]) -> dict[str, Any]:
    """The client-settable fields of an object resource sent by a client (unknown fields are dropped)."""
    return {k: v for k, v in metadata.items() if k in WRITABLE and v is not None}
