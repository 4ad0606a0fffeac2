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


STORE_SKIPPED_BYTES = m.PUBSUB_STORE_SKIPPED_BYTES
STORE_LOST_MESSAGES = m.PUBSUB_STORE_LOST_MESSAGES
STORE_MIGRATED_LOGS = m.PUBSUB_STORE_MIGRATED_LOGS
STORE_SET_ASIDE = m.PUBSUB_STORE_SET_ASIDE
STORE_WRITE_FAILURES = m.PUBSUB_STORE_WRITE_FAILURES
MEMORY_RETAINED = m.PUBSUB_MEMORY_RETAINED
MEMORY_BUDGET = m.PUBSUB_MEMORY_BUDGET
PUBLISH_REJECTED = m.PUBSUB_PUBLISH_REJECTED


def _memory(memory: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for metric, kind, key, text in (
        (MEMORY_RETAINED, "gauge", "retained_bytes", "Backlog the memory budget counts (message bytes, bookkeeping)."),
        (MEMORY_BUDGET, "gauge", "budget_bytes", "The memory budget (HYP_PUBSUB_MEMORY_BUDGET_MB)."),
        (PUBLISH_REJECTED, "counter", "rejected_total", "Publish requests refused with RESOURCE_EXHAUSTED."),
    ):
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}", f"{metric} {memory[key]}"]
    return lines


def _store(report: dict[str, Any]) -> list[str]:
    lines = [
        f"# HELP {STORE_SKIPPED_BYTES} Log bytes that failed their check at start: cut at the tail or skipped.",
        f"# TYPE {STORE_SKIPPED_BYTES} counter",
    ]
    lines += [
        f'{STORE_SKIPPED_BYTES}{{log="{e["log"]}",where="{e["where"]}"}} {e["bytes"]}' for e in report["skipped_bytes"]
    ]
    for metric, key, text in (
        (STORE_LOST_MESSAGES, "lost_messages", "Messages whose log records did not check at start (never replayed)."),
        (STORE_MIGRATED_LOGS, "migrated_logs", "Logs of the old format (no checksums) rewritten at start."),
        (STORE_SET_ASIDE, "set_aside", "Starts that found state.json unreadable and moved the data dir aside."),
        (STORE_WRITE_FAILURES, "write_failures", "Log appends the disk refused (disk full), cut back off the log."),
    ):
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} counter", f"{metric} {report[key]}"]
    return lines


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
    lines += [
        f"# HELP {metric} Deliveries by outcome (push: ack, nack; BigQuery: written, refused, failed_writes).",
        f"# TYPE {metric} counter",
    ]
    for sub, outcomes in sorted((push or {}).items()):
        lines += [f'{metric}{{subscription="{_esc(sub)}",outcome="{o}"}} {n}' for o, n in sorted(outcomes.items())]
    if "store" in stats:
        lines += _store(stats["store"])
    if "memory" in stats:
        lines += _memory(stats["memory"])
    lines += [f"# HELP {m.PUBSUB_UPTIME} Seconds since start.", f"# TYPE {m.PUBSUB_UPTIME} gauge"]
    lines.append(f"{m.PUBSUB_UPTIME} {stats['uptime_s']}")
    return "\n".join(lines) + "\n"
