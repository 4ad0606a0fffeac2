"""Request checks with the real service's limits and messages; no state."""

from __future__ import annotations

import re
from typing import Any

from services.pubsub import names
from services.pubsub.errors import invalid
from services.pubsub.filters import Predicate, compile_filter

DEFAULT_ACK_DEADLINE_S = 10
DEFAULT_DEAD_LETTER_ATTEMPTS = 5
TOPIC_IMMUTABLE = {"name"}
SUB_IMMUTABLE = {"name", "topic", "filter", "enable_message_ordering"}
SNAPSHOT_IMMUTABLE = {"name", "topic"}


def duration_s(d: Any) -> float:
    return float(d.seconds + d.nanos / 1e9)


def check_well_formed(pb: Any, path: str = "") -> None:
    """Every Duration and Timestamp set in ``pb`` (nested too) is one protobuf can represent: nanos within
    +-999,999,999 and of the seconds' sign. Anything else is INVALID_ARGUMENT naming the field (it would
    otherwise be stored, and fail every later save of the state)."""
    for field, value in pb.ListFields():
        if field.message_type is None or field.label == field.LABEL_REPEATED:
            continue
        name = f"{path}{field.name}"
        kind = field.message_type.full_name
        if kind in ("google.protobuf.Duration", "google.protobuf.Timestamp"):
            try:
                value.ToJsonString()
            except ValueError as exc:
                raise invalid(f"Invalid {name}: {exc}") from None
        elif not field.message_type.GetOptions().map_entry:
            check_well_formed(value, f"{name}.")


def check_retention(pb: Any) -> None:
    check_well_formed(pb)
    if pb.HasField("message_retention_duration"):
        s = duration_s(pb.message_retention_duration)
        if not 600 <= s <= names.MAX_RETENTION_S:
            raise invalid("Invalid message_retention_duration: must be between 10 minutes and 31 days")


def check_subscription(pb: Any) -> Predicate | None:
    """Fill the defaults of a Subscription pb in place, check it, and compile its filter."""
    if pb.ack_deadline_seconds == 0:
        pb.ack_deadline_seconds = DEFAULT_ACK_DEADLINE_S
    if not names.MIN_ACK_DEADLINE_S <= pb.ack_deadline_seconds <= names.MAX_ACK_DEADLINE_S:
        raise invalid(
            f"Invalid ack_deadline_seconds: {pb.ack_deadline_seconds} "
            f"(must be between {names.MIN_ACK_DEADLINE_S} and {names.MAX_ACK_DEADLINE_S})"
        )
    check_retention(pb)
    if not pb.HasField("message_retention_duration"):
        pb.message_retention_duration.seconds = names.DEFAULT_RETENTION_S
    if pb.HasField("dead_letter_policy"):
        dlp = pb.dead_letter_policy
        names.parse(dlp.dead_letter_topic, "topics")
        if dlp.max_delivery_attempts == 0:
            dlp.max_delivery_attempts = DEFAULT_DEAD_LETTER_ATTEMPTS
        if not 5 <= dlp.max_delivery_attempts <= 100:
            raise invalid("Invalid max_delivery_attempts: must be between 5 and 100")
    if pb.HasField("retry_policy"):
        rp = pb.retry_policy
        lo, hi = duration_s(rp.minimum_backoff), duration_s(rp.maximum_backoff)
        if not 0 <= lo <= 600 or not 0 <= hi <= 600 or (rp.HasField("maximum_backoff") and hi < lo):
            raise invalid("Invalid retry_policy: backoffs must be within 0-600s and minimum <= maximum")
    endpoint = pb.push_config.push_endpoint
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise invalid(f"Invalid push_endpoint: {endpoint!r} (must be an http or https URL)")
    if pb.HasField("bigquery_config"):
        if endpoint:
            raise invalid("A subscription can have push_config or bigquery_config, not both")
        check_bigquery_config(pb)
    return compile_filter(pb.filter)


# {projectId}.{datasetId}.{tableId}, or the older {projectId}:{datasetId}.{tableId}; BigQuery's naming rules
# (a dataset id: letters, digits, underscores; a table id: letters, marks, digits, underscores, dashes, spaces)
_TABLE = re.compile(
    r"(?P<project>[A-Za-z0-9][A-Za-z0-9-]{0,62})[.:](?P<dataset>\w{1,1024})\.(?P<table>[\w\- ]{1,1024})"
)
BQ_ACTIVE = 1  # BigQueryConfig.State.ACTIVE (and Subscription.State.ACTIVE)


def bigquery_table(table: str) -> tuple[str, str, str]:
    """``bigquery_config.table`` as (project, dataset, table); INVALID_ARGUMENT naming the field when malformed."""
    m = _TABLE.fullmatch(table)
    if m is None:
        raise invalid(
            f"Invalid bigquery_config.table: {table[:200]!r} (expected {{projectId}}.{{datasetId}}.{{tableId}})"
        )
    return m["project"], m["dataset"], m["table"]


def check_bigquery_config(pb: Any) -> None:
    """A BigQuery subscription's config as the real service checks it; the output-only states start ACTIVE."""
    cfg = pb.bigquery_config
    if not cfg.table:
        raise invalid("Invalid bigquery_config: bigquery_config.table is required")
    bigquery_table(cfg.table)
    if cfg.use_topic_schema and cfg.use_table_schema:
        raise invalid(
            "Invalid bigquery_config: use_topic_schema and use_table_schema cannot be enabled at the same time"
        )
    if not cfg.state:
        cfg.state = BQ_ACTIVE
    pb.state = BQ_ACTIVE if cfg.state == BQ_ACTIVE else 2  # Subscription.State.RESOURCE_ERROR


def apply_mask(target: Any, source: Any, mask: Any, cls: Any, immutable: set[str]) -> None:
    if not mask.paths:
        raise invalid("The update_mask in the request must not be empty")
    if not mask.IsValidForDescriptor(cls.DESCRIPTOR):
        raise invalid(f"Invalid update_mask paths: {list(mask.paths)}")
    bad = [p for p in mask.paths if p.split(".")[0] in immutable]
    if bad:
        raise invalid(f"Invalid update_mask: {bad} cannot be updated")
    mask.MergeMessage(source, target, replace_message_field=True, replace_repeated_field=True)


def check_messages(messages: Any) -> None:
    if not messages:
        raise invalid("The request contains no messages")
    if len(messages) > names.MAX_MESSAGES_PER_PUBLISH:
        raise invalid(f"The request contains more than {names.MAX_MESSAGES_PER_PUBLISH} messages")
    for m in messages:
        if not m.data and not m.attributes:
            raise invalid("Some messages contain no data and no attributes")
        if len(m.data) > names.MAX_MESSAGE_BYTES:
            raise invalid(f"Message size exceeds the limit: {names.MAX_MESSAGE_BYTES} bytes")
        if m.attributes:
            check_attributes(m.attributes)
        if m.ordering_key and len(m.ordering_key.encode()) > names.MAX_ORDERING_KEY_BYTES:
            raise invalid(f"Ordering key exceeds the limit: {names.MAX_ORDERING_KEY_BYTES} bytes")


def check_attributes(attrs: Any) -> None:
    if len(attrs) > names.MAX_ATTRIBUTES:
        raise invalid(f"Some messages have more than {names.MAX_ATTRIBUTES} attributes")
    for k, v in attrs.items():
        if not k:
            raise invalid("Attribute keys must not be empty")
        if len(k.encode()) > names.MAX_ATTRIBUTE_KEY_BYTES:
            raise invalid(f"Attribute key {k[:40]!r} exceeds {names.MAX_ATTRIBUTE_KEY_BYTES} bytes")
        if len(v.encode()) > names.MAX_ATTRIBUTE_VALUE_BYTES:
            raise invalid(f"Attribute value of {k[:40]!r} exceeds {names.MAX_ATTRIBUTE_VALUE_BYTES} bytes")
        if k.startswith("goog"):
            raise invalid(f"Attribute key {k[:40]!r} must not start with 'goog'")


def parse_ack_id(ack_id: str) -> tuple[int, int]:
    """An ack id is ``<seq>-<delivery generation>``."""
    try:
        seq, gen = ack_id.split("-", 1)
        return int(seq), int(gen)
    except ValueError:
        raise invalid(f"Invalid ack ID: {ack_id[:60]!r}") from None
