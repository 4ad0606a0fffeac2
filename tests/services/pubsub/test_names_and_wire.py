"""Resource names, hand-encoded pull responses and topology substitution (fast, no processes)."""

from __future__ import annotations

import pytest
from google.pubsub_v1 import types

from services.pubsub import names, wire
from services.pubsub.errors import ApiError
from services.pubsub.topology import TopologyError, substitute


@pytest.mark.parametrize("rid", ["abc", "hyp_subscription_dataflow", "a-b.c~d+e%f", "A" + "x" * 254])
def test_valid_ids(rid: str) -> None:
    assert names.parse(f"projects/hyp-local/topics/{rid}", "topics") == ("hyp-local", rid)


@pytest.mark.parametrize("rid", ["ab", "1abc", "goog-x", "GOOGle", "a b", "a/b", "x" * 256, "ab$c", ""])
def test_invalid_ids(rid: str) -> None:
    with pytest.raises(ApiError, match="Invalid"):
        names.parse(f"projects/hyp-local/topics/{rid}", "topics")


def test_wrong_collection_is_invalid() -> None:
    with pytest.raises(ApiError):
        names.parse("projects/hyp-local/subscriptions/abc", "topics")


@pytest.mark.parametrize("attempt", [0, 1, 300])
def test_received_message_encoding_parses_as_pull_response(attempt: int) -> None:
    msg = types.PubsubMessage(data=b"x" * 300, attributes={"k": "v"}, message_id="42")
    blob = types.PubsubMessage.serialize(msg)
    raw = wire.received_message(b"7-3", blob, attempt) * 2
    resp = types.PullResponse.deserialize(raw)
    assert len(resp.received_messages) == 2
    got = resp.received_messages[0]
    assert got.ack_id == "7-3"
    assert got.message.data == b"x" * 300
    assert got.message.attributes["k"] == "v"
    assert got.delivery_attempt == attempt


def test_varint_matches_protobuf() -> None:
    for n in (1, 127, 128, 300, 2**21, 2**30):
        resp = types.PullResponse.deserialize(wire.received_message(b"a", b"", n))
        assert resp.received_messages[0].delivery_attempt == n


def test_env_substitution() -> None:
    env = {"SET": "value", "EMPTY": ""}
    assert substitute("${SET}/${EMPTY:-d}/${UNSET:-fallback}/${UNSET-x}", env) == "value/d/fallback/x"
    with pytest.raises(TopologyError, match="REQUIRED"):
        substitute("${REQUIRED:?set REQUIRED to the endpoint}", env)
