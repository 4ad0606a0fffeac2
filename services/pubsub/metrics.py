"""Prometheus text exposition of the broker's counters and per-subscription backlog."""

from __future__ import annotations

from typing import Any

from services.common import metric_names as m


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_TOPIC = [
    (m.PUBSUB_TOPIC_PUBLISHED, "counter", "Messages published to the topic.", "published_total"),
    (
        m.PUBSUB_TOPIC_PUBLISHED_BYTES,
        "counter",
        "Bytes of serialized messages published.",
        "published_bytes_total",
    ),
    (m.PUBSUB_TOPIC_RETAINED, "gauge", "Messages held in the topic log.", "retained_messages"),
]
_SUB = [
    (m.PUBSUB_SUBSCRIPTION_BACKLOG, "gauge", "Unacknowledged messages (num_undelivered_messages).", "backlog"),
    (
        m.PUBSUB_SUBSCRIPTION_OUTSTANDING,
        "gauge",
        "Messages delivered and not yet acked or expired.",
        "outstanding",
    ),
    (
        m.PUBSUB_SUBSCRIPTION_OLDEST_UNACKED_AGE,
        "gauge",
        "Age of the oldest unacknowledged message.",
        "oldest_unacked_age_s",
    ),
    (m.PUBSUB_SUBSCRIPTION_DELIVERED, "counter", "Deliveries (redeliveries included).", "delivered_total"),
    (m.PUBSUB_SUBSCRIPTION_ACKED, "counter", "Messages acknowledged.", "acked_total"),
    (
        m.PUBSUB_SUBSCRIPTION_DEAD_LETTERED,
        "counter",
        "Messages forwarded to the dead-letter topic.",
        "dead_lettered_total",
    ),
    (m.PUBSUB_SUBSCRIPTION_EXPIRED, "counter", "Leases that ran past their ack deadline.", "expired_total"),
    (
        m.PUBSUB_SUBSCRIPTION_RETENTION_EXPIRED,
        "counter",
        "Unacked messages dropped after message_retention_duration.",
        "retention_expired_total",
    ),
]


def render(stats: dict[str, Any], push: dict[str, dict[str, int]] | None = None) -> str:
    lines: list[str] = []
    for metric, kind, text, key in _TOPIC:
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}"]
        lines += [f'{metric}{{topic="{_esc(t["name"])}"}} {t[key]}' for t in stats["topics"]]
    for metric, kind, text, key in _SUB:
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}"]
        lines += [
            f'{metric}{{subscription="{_esc(s["name"])}",topic="{_esc(s["topic"])}"}} {s[key]}'
            for s in stats["subscriptions"]
        ]
    metric = m.PUBSUB_PUSH_REQUESTS
    lines += [f"# HELP {metric} Push deliveries by outcome.", f"# TYPE {metric} counter"]
    for sub, outcomes in sorted((push or {}).items()):
        lines += [f'{metric}{{subscription="{_esc(sub)}",outcome="{o}"}} {n}' for o, n in sorted(outcomes.items())]
    lines += [f"# HELP {m.PUBSUB_UPTIME} Seconds since start.", f"# TYPE {m.PUBSUB_UPTIME} gauge"]
    lines.append(f"{m.PUBSUB_UPTIME} {stats['uptime_s']}")
    return "\n".join(lines) + "\n"
