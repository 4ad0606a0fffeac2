"""A lean BigQuery REST client for BigQuery subscriptions: tables.get and tabledata.insertAll, nothing else.

services.pubsub reaches ``hyp bigquery`` over HTTP only (docs/architecture.md's layering). One client per
subscription's delivery thread: one keep-alive connection, reopened after any failure. The address is what
Google's client takes from ``BIGQUERY_EMULATOR_HOST`` (``http://host:port``; a bare ``host:port`` works too).
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import quote, urlsplit

_compact = json.JSONEncoder(separators=(",", ":")).encode


class Unavailable(Exception):
    """No usable answer: connection refused or reset, a timeout, a 5xx, a body that is not JSON."""


class TableNotFound(Exception):
    """404: the table (or its dataset or project) does not exist."""


class BigQueryClient:
    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) address for BigQuery: {url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self.conn: http.client.HTTPConnection | None = None

    def _path(self, project: str, dataset: str, table: str) -> str:
        p, d, t = (quote(x, safe="") for x in (project, dataset, table))
        return f"{self.prefix}/bigquery/v2/projects/{p}/datasets/{d}/tables/{t}"

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else _compact(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: once more, fresh
            if self.conn is None:
                cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
                self.conn = cls(self.host, self.port, timeout=self.timeout_s)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
                status = response.status
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if attempt == 2:
                    raise Unavailable(f"{type(exc).__name__}: {exc}") from None
                continue
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise Unavailable(f"{type(exc).__name__}: {exc}") from None
            if response.will_close:
                self.close()
            break
        if status == 404:
            raise TableNotFound(path)
        if status >= 500 or status == 429:
            raise Unavailable(f"HTTP {status}")
        try:
            return status, json.loads(raw) if raw else {}
        except ValueError:
            raise Unavailable(f"HTTP {status} with a body that is not JSON") from None

    def get_table(self, project: str, dataset: str, table: str) -> dict[str, Any]:
        """The table resource (its ``schema``); TableNotFound, Unavailable."""
        status, doc = self._request("GET", self._path(project, dataset, table))
        if status != 200 or not isinstance(doc, dict):
            raise Unavailable(f"tables.get answered HTTP {status}")
        return doc

    def insert_all(
        self, project: str, dataset: str, table: str, rows: list[dict[str, Any]], ignore_unknown: bool
    ) -> list[dict[str, Any]]:
        """tabledata.insertAll with skipInvalidRows (good rows go in even when others are refused); returns
        BigQuery's insertErrors (``index`` into rows). TableNotFound, Unavailable; a 4xx refusing the whole
        request is Unavailable too (retried: nothing of the batch was written)."""
        body = {"kind": "bigquery#tableDataInsertAllRequest", "skipInvalidRows": True, "rows": rows}
        if ignore_unknown:
            body["ignoreUnknownValues"] = True
        status, doc = self._request("POST", self._path(project, dataset, table) + "/insertAll", body)
        if status != 200 or not isinstance(doc, dict):
            message = doc.get("error", {}).get("message", "") if isinstance(doc, dict) else ""
            raise Unavailable(f"insertAll answered HTTP {status}: {message}")
        errors = doc.get("insertErrors") or []
        return [e for e in errors if isinstance(e, dict)]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
