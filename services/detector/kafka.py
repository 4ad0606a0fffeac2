"""Kafka at the edges (source=kafka on the Flink runner): topic set-up with kafka-python.

The read itself is services/detector/kafka_read.py (Python-only, kafka-python in the SDK harness).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def ensure_topic(bootstrap_servers: str, topic: str, partitions: int = 2, timeout_s: float = 30.0) -> bool:
    """Create ``topic`` unless it exists; True when it was created. Idempotent."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000))
    try:
        if topic in admin.list_topics():
            return False
        try:
            admin.create_topics([NewTopic(name=topic, num_partitions=partitions, replication_factor=1)])
        except TopicAlreadyExistsError:
            return False
        log.info("created Kafka topic %s", topic)
        return True
    finally:
        admin.close()
