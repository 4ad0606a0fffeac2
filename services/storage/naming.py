"""Bucket and object names checked against Cloud Storage's naming rules
(cloud.google.com/storage/docs/buckets#naming and .../objects#naming); a bad name is a 400 ``invalid``."""

from __future__ import annotations

import ipaddress
import re

from services.storage.errors import ApiError, invalid

_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
MAX_OBJECT_NAME_BYTES = 1024


def check_bucket(name: str) -> str:
    """``name`` if it is a valid bucket name, else ApiError 400 saying which rule it breaks."""
    if not isinstance(name, str) or not name:
        raise ApiError(400, "required", "Required: the bucket name.")
    why = bucket_problem(name)
    if why:
        raise invalid(f"Invalid bucket name: '{name}': {why}")
    return name


def bucket_problem(name: str) -> str | None:
    if not _BUCKET_CHARS.match(name):
        return "only lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
    longest = max(len(part) for part in name.split("."))
    if "." in name:
        if len(name) > 222 or longest > 63:
            return "names with dots: at most 222 characters, each dot-separated part at most 63"
    elif not 3 <= len(name) <= 63:
        return "between 3 and 63 characters"
    if len(name) < 3:
        return "at least 3 characters"
    try:
        ipaddress.IPv4Address(name)
        return "must not be an IP address"
    except ValueError:
        pass
    if name.startswith("goog") or "google" in name or "g00gle" in name:
        return "must not start with 'goog' nor contain 'google'"
    return None


def check_object(name: str) -> str:
    """``name`` if it is a valid object name, else ApiError 400."""
    if not name:
        raise ApiError(400, "required", "Required: the object name.")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_OBJECT_NAME_BYTES:
        raise invalid(f"Invalid object name: longer than {MAX_OBJECT_NAME_BYTES} bytes of UTF-8")
    if "\r" in name or "\n" in name:
        raise invalid("Invalid object name: carriage return and line feed are not allowed")
    if name in (".", ".."):
        raise invalid(f"Invalid object name: '{name}'")
    if name.startswith(".well-known/acme-challenge/"):
        raise invalid("Invalid object name: '.well-known/acme-challenge/' is reserved")
    return name
