"""Prometheus text exposition of the broker's counters and per-subscription backlog."""

from __future__ import annotations

from typing import Any


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_TOPIC = [
    ("pubsub_topic_messages_published_total", "counter", "Messages published to the topic.", "published_total"),
    (
        "pubsub_topic_bytes_published_total",
        "counter",
        "Bytes of serialized messages published.",
        "published_bytes_total",
    ),
    ("pubsub_topic_retained_messages", "gauge", "Messages held in the topic log.", "retained_messages"),
]
_SUB = [
    ("pubsub_subscription_backlog_messages", "gauge", "Unacknowledged messages (num_undelivered_messages).", "backlog"),
    (
        "pubsub_subscription_outstanding_messages",
        "gauge",
        "Messages delivered and not yet acked or expired.",
        "outstanding",
    ),
    (
        "pubsub_subscription_oldest_unacked_message_age_seconds",
        "gauge",
        "Age of the oldest unacknowledged message.",
        "oldest_unacked_age_s",
    ),
    ("pubsub_subscription_delivered_total", "counter", "Deliveries (redeliveries included).", "delivered_total"),
    ("pubsub_subscription_acked_total", "counter", "Messages acknowledged.", "acked_total"),
    (
        "pubsub_subscription_dead_lettered_total",
        "counter",
        "Messages forwarded to the dead-letter topic.",
        "dead_lettered_total",
    ),
    ("pubsub_subscription_expired_total", "counter", "Leases that ran past their ack deadline.", "expired_total"),
    (
        "pubsub_subscription_retention_expired_total",
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
    metric = "pubsub_push_requests_total"
    lines += [f"# HELP {metric} Push deliveries by outcome.", f"# TYPE {metric} counter"]
    for sub, outcomes in sorted((push or {}).items()):
        lines += [f'{metric}{{subscription="{_esc(sub)}",outcome="{o}"}} {n}' for o, n in sorted(outcomes.items())]
    lines += ["# HELP pubsub_uptime_seconds Seconds since start.", "# TYPE pubsub_uptime_seconds gauge"]
    lines.append(f"pubsub_uptime_seconds {stats['uptime_s']}")
    return "\n".join(lines) + "\n"
