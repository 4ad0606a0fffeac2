"""Structured (JSON-lines) logging for every service.

By default records go to stderr. When the environment names a file (``HYP_LOG_FILE``, which ``hyp up``
sets per service), they go to that file instead, rotated by size: at most ``HYP_LOG_MAX_BYTES`` per file
(default 5 MB) and ``HYP_LOG_BACKUPS`` older files (default 2), so a service never holds more than
``max_bytes * (backups + 1)`` of logs however long it runs.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

LOG_FILE_ENV = "HYP_LOG_FILE"
MAX_BYTES_ENV = "HYP_LOG_MAX_BYTES"
BACKUPS_ENV = "HYP_LOG_BACKUPS"
DEFAULT_MAX_BYTES = 5_000_000
DEFAULT_BACKUPS = 2
ACCESS_LOG_ENV = "HYP_ACCESS_LOG"  # CommonSettings.access_log

# Third-party loggers that write one INFO line per HTTP request: kept at WARNING unless the level is DEBUG
# (per-request lines are debugging output, not state changes)
PER_REQUEST = ("httpx", "httpcore")
ACCESS = "uvicorn.access"  # uvicorn's request lines: only when HYP_ACCESS_LOG is on (or at DEBUG)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


@dataclass(frozen=True)
class FileTarget:
    """Where a service's records go when the environment names a file, and how much of it is kept."""

    path: str
    max_bytes: int = DEFAULT_MAX_BYTES
    backups: int = DEFAULT_BACKUPS

    @property
    def bound(self) -> int:
        """The most bytes the file and its backups hold together (one record may overshoot a file by its size)."""
        return self.max_bytes * (self.backups + 1)


def _positive(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a number") from None
    return max(minimum, value)


def file_target(env: Mapping[str, str] | None = None) -> FileTarget | None:
    """The log file the environment names (``HYP_LOG_FILE``), or None for stderr."""
    env = os.environ if env is None else env
    path = env.get(LOG_FILE_ENV, "").strip()
    if not path:
        return None
    return FileTarget(
        path,
        max_bytes=_positive(env, MAX_BYTES_ENV, DEFAULT_MAX_BYTES, 1024),
        backups=_positive(env, BACKUPS_ENV, DEFAULT_BACKUPS, 0),
    )


def handler_for(target: FileTarget | None) -> logging.Handler:
    if target is None:
        return logging.StreamHandler(sys.stderr)
    if target.backups == 0:  # RotatingFileHandler never rolls over without a backup: truncate instead
        return _TruncatingFileHandler(target.path, maxBytes=target.max_bytes, backupCount=0, encoding="utf-8")
    return logging.handlers.RotatingFileHandler(
        target.path, maxBytes=target.max_bytes, backupCount=target.backups, encoding="utf-8"
    )


class _TruncatingFileHandler(logging.handlers.RotatingFileHandler):
    def doRollover(self) -> None:
        if self.stream:
            self.stream.close()
        self.stream = self._open()
        self.stream.truncate(0)


def setup_logging(level: str = "INFO", *, json_lines: bool = True, env: Mapping[str, str] | None = None) -> None:
    """Configure the root logger once; safe to call again (the previous handlers are closed)."""
    handler = handler_for(file_target(env))
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, logging.FileHandler):
            old.close()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in PER_REQUEST:
        logging.getLogger(name).setLevel(quiet)
    access = (os.environ if env is None else env).get(ACCESS_LOG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    logging.getLogger(ACCESS).setLevel(logging.NOTSET if access else quiet)
