"""Resource names and limits, validated by the real service's rules.

Names (topic, subscription, snapshot ids): 3-255 characters, start with a letter, then letters,
digits and ``-_.~+%``, and never start with ``goog``.
"""

from __future__ import annotations

import re

from services.pubsub.errors import invalid

_ID = re.compile(r"[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}")
_PROJECT = re.compile(r"[a-z0-9][a-z0-9\-.:]{0,99}")
DELETED_TOPIC = "_deleted-topic_"

# Limits of the real service (https://cloud.google.com/pubsub/quotas#resource_limits).
MAX_PUBLISH_REQUEST_BYTES = 10_000_000
MAX_MESSAGES_PER_PUBLISH = 1_000
MAX_MESSAGE_BYTES = 10_000_000
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_KEY_BYTES = 256
MAX_ATTRIBUTE_VALUE_BYTES = 1_024
MAX_ORDERING_KEY_BYTES = 1_024
MAX_PULL_MESSAGES = 1_000
MIN_ACK_DEADLINE_S = 10
MAX_ACK_DEADLINE_S = 600
MAX_RETENTION_S = 31 * 24 * 3600
DEFAULT_RETENTION_S = 7 * 24 * 3600


def parse(name: str, kind: str) -> tuple[str, str]:
    """``projects/P/<kind>/ID`` -> (P, ID); INVALID_ARGUMENT naming the bad part otherwise."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != kind:
        raise invalid(f"Invalid [{kind}] name: (name={name})")
    project, rid = parts[1], parts[3]
    if not _PROJECT.fullmatch(project):
        raise invalid(f"Invalid [projects] name: (name={name})")
    if not _ID.fullmatch(rid) or rid.lower().startswith("goog"):
        raise invalid(f"Invalid [{kind}] name: (name={name})")
    return project, rid


def parse_project(name: str) -> str:
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "projects" or not _PROJECT.fullmatch(parts[1]):
        raise invalid(f"Invalid [projects] name: (name={name})")
    return parts[1]
