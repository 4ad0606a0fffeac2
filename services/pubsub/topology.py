"""Topology file: topics and subscriptions declared in YAML, applied idempotently at start.

Each entry is the REST API's JSON form of a Topic or Subscription; ``name``, ``topic`` and
``deadLetterPolicy.deadLetterTopic`` may be short ids (the file's ``project`` is prepended).
``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` are substituted from the environment
first, as docker compose does.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import field_mask_pb2, json_format

from services.common import names
from services.pubsub.broker import Broker, Subscription, Topic
from services.pubsub.errors import ApiError, TopologyError

log = logging.getLogger("hyp.pubsub.topology")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
_IMMUTABLE = {"name", "topic", "filter", "enableMessageOrdering", "enable_message_ordering"}


def substitute(text: str, env: Mapping[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        value = env.get(name)
        if op in (":-", "-"):
            return value if value or (op == "-" and value is not None) else arg
        if op in (":?", "?") and not value:
            raise TopologyError(f"topology: ${{{name}}} is required: {arg or 'not set'}")
        return value or ""

    return _VAR.sub(repl, text)


def load(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise TopologyError(f"topology: cannot read {path}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(substitute(text, os.environ if env is None else env)) or {}
    except yaml.YAMLError as exc:
        raise TopologyError(f"topology: {path} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise TopologyError(f"topology: {path} must be a mapping with topics and subscriptions")
    return doc


def apply(broker: Broker, doc: dict[str, Any], default_project: str) -> None:
    """Create what is missing; update mutable fields of what exists (a changed push endpoint applies)."""
    project = str(doc.get("project") or default_project)
    for kind in (names.TOPICS, names.SUBSCRIPTIONS):  # the file's keys are the collections' names
        entries = doc.get(kind) or []
        if not isinstance(entries, list):
            raise TopologyError(f"topology: {kind} must be a list")
        for entry in entries:
            if not isinstance(entry, dict) or "name" not in entry:
                raise TopologyError(f"topology: every entry of {kind} needs a name: {entry!r}")
            entry = dict(entry)
            entry["name"] = names.project_resource(project, kind, str(entry["name"]))
            try:
                if kind == names.TOPICS:
                    _apply_topic(broker, entry)
                else:
                    _apply_subscription(broker, entry, project)
            except ApiError as exc:
                raise TopologyError(f"topology: {entry['name']}: {exc.message}") from None
            except json_format.ParseError as exc:
                raise TopologyError(f"topology: {entry['name']}: {exc}") from None


def _apply_topic(broker: Broker, entry: dict[str, Any]) -> None:
    pb = json_format.ParseDict(entry, Topic())
    if pb.name in broker.topics:
        paths = [_field(Topic, k) for k in entry if k != "name"]
        if paths:
            broker.update_topic(pb, field_mask_pb2.FieldMask(paths=paths))
        return
    broker.create_topic(pb)
    log.info("topic created", extra={"fields": {"topic": pb.name}})


def _apply_subscription(broker: Broker, entry: dict[str, Any], project: str) -> None:
    if "topic" not in entry:
        raise TopologyError(f"topology: subscription {entry['name']} needs a topic")
    entry["topic"] = names.topic(project, str(entry["topic"]))
    dlp = entry.get("deadLetterPolicy") or entry.get("dead_letter_policy")
    if isinstance(dlp, dict):
        for k in ("deadLetterTopic", "dead_letter_topic"):
            if k in dlp:
                dlp[k] = names.topic(project, str(dlp[k]))
    pb = json_format.ParseDict(entry, Subscription())
    if pb.name in broker.subs:
        paths = [_field(Subscription, k) for k in entry if k not in _IMMUTABLE]
        if paths:
            broker.update_subscription(pb, field_mask_pb2.FieldMask(paths=paths))
        return
    broker.create_subscription(pb)
    log.info("subscription created", extra={"fields": {"subscription": pb.name, "topic": pb.topic}})


def _field(cls: Any, json_key: str) -> str:
    for f in cls.DESCRIPTOR.fields:
        if json_key in (f.name, f.json_name):
            return str(f.name)
    raise TopologyError(f"topology: unknown field {json_key!r} for {cls.DESCRIPTOR.name}")
