"""One page of a list call (datasets, tables, jobs, models): BigQuery's ``pageToken`` and ``maxResults``."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from services.bigquery.errors import invalid

DEFAULT_PAGE = 50  # items per page when the client sets no maxResults


def list_page(request: Request, items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """``{key: the page's items}``, with ``nextPageToken`` while items are left; a token or size that is not a
    non-negative (size: positive) integer is BigQuery's ``invalid``."""
    try:
        start = int(request.query_params.get("pageToken") or 0)
        size = int(request.query_params.get("maxResults") or DEFAULT_PAGE)
    except ValueError:
        raise invalid("Invalid pageToken or maxResults.") from None
    if start < 0 or size < 1:
        raise invalid("Invalid pageToken or maxResults.")
    page: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        page["nextPageToken"] = str(start + size)
    return page
