"""BigQuery subscriptions without processes: config checks, the table-schema check, message -> row."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from google.pubsub_v1 import types

from services.pubsub.bq_delivery import BadMessage, SchemaMismatch, _Target, check_schema, to_row
from services.pubsub.errors import ApiError
from services.pubsub.topic import PubsubMessage, Subscription
from services.pubsub.validation import bigquery_table, check_subscription

pytestmark = pytest.mark.gcp_parity("https://cloud.google.com/pubsub/docs/bigquery")
SUB = "projects/p/subscriptions/s"


def _cfg(**fields: Any) -> Any:
    return types.BigQueryConfig.pb()(**fields)


def _message(data: bytes, **attributes: str) -> Any:
    msg = PubsubMessage(data=data, attributes=attributes, message_id="42")
    msg.publish_time.FromNanoseconds(1_795_776_437_487_123_000)
    return msg


def _field(name: str, kind: str, mode: str = "NULLABLE") -> dict[str, str]:
    return {"name": name, "type": kind, "mode": mode}


METADATA = [
    _field("subscription_name", "STRING"),
    _field("message_id", "STRING"),
    _field("publish_time", "TIMESTAMP"),
    _field("data", "STRING"),
    _field("attributes", "STRING"),
]


@pytest.mark.parametrize(
    ("table", "parts"),
    [
        ("hyp-local.ecommerce_sink.pubsub_direct", ("hyp-local", "ecommerce_sink", "pubsub_direct")),
        ("my-project:my_dataset.my table", ("my-project", "my_dataset", "my table")),
    ],
)
def test_table_names_in_both_forms(table: str, parts: tuple[str, str, str]) -> None:
    assert bigquery_table(table) == parts


@pytest.mark.parametrize("table", ["", "p.d", "p.d.t.x", "p.d-d.t", "p.d.t/x", ".d.t"])
def test_malformed_table_names_name_the_field(table: str) -> None:
    pb = Subscription(name=SUB, topic="projects/p/topics/t", bigquery_config=_cfg(table=table))
    with pytest.raises(ApiError, match=r"bigquery_config\.table") as exc:
        check_subscription(pb)
    assert exc.value.code.name == "INVALID_ARGUMENT"


def test_a_valid_config_starts_active_and_push_is_exclusive() -> None:
    pb = Subscription(name=SUB, topic="projects/p/topics/t", bigquery_config=_cfg(table="p.d.t", state=3))
    check_subscription(pb)
    assert pb.state == 2  # RESOURCE_ERROR follows the config's state (output only, kept by the loop)
    pb.bigquery_config.state = 0
    check_subscription(pb)
    assert (pb.bigquery_config.state, pb.state) == (1, 1)
    pb.push_config.push_endpoint = "http://127.0.0.1:9/"
    with pytest.raises(ApiError, match="push_config or bigquery_config"):
        check_subscription(pb)


def test_metadata_columns() -> None:
    cfg = _cfg(table="p.d.t", write_metadata=True)
    target = _Target("p", "d", "t", *check_schema(cfg, METADATA))
    row = to_row(SUB, cfg, target, _message(b"hello", k="v"))
    assert row == {
        "subscription_name": SUB,
        "message_id": "42",
        "publish_time": "1795776437.487123",
        "data": "hello",
        "attributes": '{"k":"v"}',
    }


def test_bytes_data_is_base64_and_column_names_keep_their_spelling() -> None:
    cfg = _cfg(table="p.d.t")
    target = _Target("p", "d", "t", *check_schema(cfg, [_field("Data", "BYTES")]))
    assert to_row(SUB, cfg, target, _message(b"\xff\x00")) == {"Data": base64.b64encode(b"\xff\x00").decode()}


def test_not_utf8_for_a_string_column_is_a_bad_message() -> None:
    cfg = _cfg(table="p.d.t")
    target = _Target("p", "d", "t", *check_schema(cfg, [_field("data", "STRING")]))
    with pytest.raises(BadMessage):
        to_row(SUB, cfg, target, _message(b"\xff"))


def test_table_schema_takes_the_json_fields() -> None:
    cfg = _cfg(table="p.d.t", use_table_schema=True)
    target = _Target("p", "d", "t", *check_schema(cfg, [_field("id", "INTEGER")]))
    assert to_row(SUB, cfg, target, _message(json.dumps({"id": 1, "x": 2}).encode())) == {"id": 1, "x": 2}
    for data in (b"[1]", b"not json"):
        with pytest.raises(BadMessage):
            to_row(SUB, cfg, target, _message(data))


@pytest.mark.parametrize(
    ("cfg", "fields", "problem"),
    [
        (_cfg(table="p.d.t"), [_field("payload", "STRING")], "no column 'data'"),
        (_cfg(table="p.d.t"), [_field("data", "INTEGER")], "'data' is INTEGER"),
        (_cfg(table="p.d.t", write_metadata=True), METADATA[1:], "no column 'subscription_name'"),
        (_cfg(table="p.d.t"), [_field("data", "STRING"), _field("id", "STRING", "REQUIRED")], "REQUIRED column 'id'"),
    ],
)
def test_schema_mismatch_names_the_column(cfg: Any, fields: list[dict[str, str]], problem: str) -> None:
    with pytest.raises(SchemaMismatch, match=problem):
        check_schema(cfg, fields)
