"""The subscription filter language (fast, no processes)."""

from __future__ import annotations

import grpc
import pytest

from services.pubsub.errors import ApiError
from services.pubsub.filters import compile_filter

pytestmark = pytest.mark.gcp_parity("https://cloud.google.com/pubsub/docs/subscription-message-filter")


@pytest.mark.parametrize(
    ("text", "attrs", "expected"),
    [
        ('attributes.event = "purchase"', {"event": "purchase"}, True),
        ('attributes.event = "purchase"', {"event": "view_item"}, False),
        ('attributes.event != "purchase"', {}, True),
        ("attributes:anomaly", {"anomaly": ""}, True),
        ("attributes:anomaly", {}, False),
        ("NOT attributes:anomaly", {}, True),
        ("-attributes:anomaly", {"anomaly": "1"}, False),
        ('hasPrefix(attributes.kind, "value_")', {"kind": "value_spike"}, True),
        ('hasPrefix(attributes.kind, "value_")', {"kind": "tax"}, False),
        ('attributes.a = "1" AND attributes.b = "2"', {"a": "1", "b": "2"}, True),
        ('attributes.a = "1" AND attributes.b = "2"', {"a": "1"}, False),
        ('attributes.a = "1" OR attributes.b = "2"', {"b": "2"}, True),
        ('(attributes.a = "1" OR attributes.b = "2") AND NOT attributes:c', {"a": "1", "c": "x"}, False),
        ('attributes."dotted.key" = "v \\" q"', {"dotted.key": 'v " q'}, True),
    ],
)
def test_filter_semantics(text: str, attrs: dict[str, str], expected: bool) -> None:
    predicate = compile_filter(text)
    assert predicate is not None
    assert predicate(attrs) is expected


@pytest.mark.parametrize(
    "text",
    [
        'attributes.a = "1" AND attributes.b = "2" OR attributes:c',  # AND/OR mixed without parentheses
        "attributes.a = unquoted",
        "attributes.a",
        'data = "x"',
        "(attributes:a",
        "hasPrefix(attributes.a)",
        "attributes:a extra",
        "attributes:" + "k" * 300,
        "attributes.a = 'single'",
    ],
)
def test_invalid_filters_are_invalid_argument(text: str) -> None:
    with pytest.raises(ApiError) as err:
        compile_filter(text)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "filter" in err.value.message


def test_empty_filter_matches_everything() -> None:
    assert compile_filter("") is None
    assert compile_filter("   ") is None
