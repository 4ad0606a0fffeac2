"""jobs.query's queryResultsFormat through Google's client: Arrow results are refused with a 400 naming the
field, never answered as JSON rows the client would read as an empty Arrow table."""

from __future__ import annotations

import pytest


def test_arrow_results_format_is_refused(client) -> None:
    from google.api_core.exceptions import BadRequest

    with pytest.raises(BadRequest, match="queryResultsFormat") as raised:
        client.query_and_wait("SELECT 1 AS x", query_results_format="ARROW")
    assert raised.value.errors[0]["reason"] == "invalid"
    assert "not supported here" in raised.value.message


def test_json_results_unchanged(client) -> None:  # the default (no queryResultsFormat) still answers rows
    assert [tuple(r.values()) for r in client.query_and_wait("SELECT 1 AS x UNION ALL SELECT 2 ORDER BY x")] == [
        (1,),
        (2,),
    ]
