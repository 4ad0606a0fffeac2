"""One home for the Prometheus metric names that services expose and others read.

The services write these names on their ``/metrics`` pages; the console, ``hyp up``'s live summary,
tests and benchmarks read them by these constants, never by guessing from a substring.

Each constant is the name a Prometheus query uses: a counter's ``..._total`` sample, a gauge's
name, a histogram's base name (its samples add ``_bucket``, ``_sum`` and ``_count``). prometheus_client
accepts a counter's name with its ``_total`` suffix and exposes exactly the same samples.
"""

from __future__ import annotations

# Label names shared by producers and readers.
TOPIC = "topic"  # full resource name, projects/P/topics/T
SUBSCRIPTION = "subscription"  # full resource name, projects/P/subscriptions/S
MODEL_VERSION = "model_version"  # the detector's model version label

# Pub/Sub emulator (services/pubsub/metrics.py): per topic (label topic) ...
PUBSUB_TOPIC_PUBLISHED = "pubsub_topic_messages_published_total"
PUBSUB_TOPIC_PUBLISHED_BYTES = "pubsub_topic_bytes_published_total"
PUBSUB_TOPIC_RETAINED = "pubsub_topic_retained_messages"
# ... per subscription (labels subscription and topic) ...
PUBSUB_SUBSCRIPTION_BACKLOG = "pubsub_subscription_backlog_messages"
PUBSUB_SUBSCRIPTION_OUTSTANDING = "pubsub_subscription_outstanding_messages"
PUBSUB_SUBSCRIPTION_OLDEST_UNACKED_AGE = "pubsub_subscription_oldest_unacked_message_age_seconds"
PUBSUB_SUBSCRIPTION_DELIVERED = "pubsub_subscription_delivered_total"
PUBSUB_SUBSCRIPTION_ACKED = "pubsub_subscription_acked_total"
PUBSUB_SUBSCRIPTION_DEAD_LETTERED = "pubsub_subscription_dead_lettered_total"
PUBSUB_SUBSCRIPTION_EXPIRED = "pubsub_subscription_expired_total"
PUBSUB_SUBSCRIPTION_RETENTION_EXPIRED = "pubsub_subscription_retention_expired_total"
# ... push deliveries (labels subscription and outcome) and the process.
PUBSUB_PUSH_REQUESTS = "pubsub_push_requests_total"
PUBSUB_UPTIME = "pubsub_uptime_seconds"
# ... the --data-dir store's replay report at start (label log and where on the skipped bytes) ...
PUBSUB_STORE_SKIPPED_BYTES = "pubsub_store_skipped_bytes_total"
PUBSUB_STORE_LOST_MESSAGES = "pubsub_store_lost_messages_total"
PUBSUB_STORE_MIGRATED_LOGS = "pubsub_store_migrated_logs_total"
PUBSUB_STORE_SET_ASIDE = "pubsub_store_set_aside_total"
PUBSUB_STORE_WRITE_FAILURES = "pubsub_store_write_failures_total"
# ... and the memory budget without --data-dir.
PUBSUB_MEMORY_RETAINED = "pubsub_memory_retained_bytes"
PUBSUB_MEMORY_BUDGET = "pubsub_memory_budget_bytes"
PUBSUB_PUBLISH_REJECTED = "pubsub_publish_rejected_total"

# Beam detector (services/detector/metrics.py).
DETECTOR_EVENTS = "hyp_detector_events_total"
DETECTOR_PURCHASES_SCORED = "hyp_detector_purchases_scored_total"
DETECTOR_ANOMALIES = "hyp_detector_anomalies_total"
DETECTOR_DEADLETTERED = "hyp_detector_deadlettered_total"
DETECTOR_BATCH_SIZE = "hyp_detector_batch_size"  # histogram
DETECTOR_LATENCY = "hyp_detector_latency_seconds"  # histogram
DETECTOR_MODEL_VERSION = "hyp_detector_model_version"  # 1 for the version in label model_version
DETECTOR_COMMIT_PENDING = "hyp_detector_commit_pending"
DETECTOR_COMMITS = "hyp_detector_commits_total"
DETECTOR_COMMIT_FAILURES = "hyp_detector_commit_failures_total"
DETECTOR_LAST_BATCH = "hyp_detector_last_batch_timestamp_seconds"

# Vertex-compatible endpoint (services/endpoint/metrics.py).
ENDPOINT_REQUESTS = "hyp_endpoint_requests_total"
ENDPOINT_REQUEST_SECONDS = "hyp_endpoint_request_seconds"  # histogram
ENDPOINT_BATCH_SIZE = "hyp_endpoint_batch_size"  # histogram
ENDPOINT_PREDICTIONS = "hyp_endpoint_predictions_total"
ENDPOINT_MODEL_VERSION = "hyp_endpoint_model_version"
ENDPOINT_MODEL_SWAPS = "hyp_endpoint_model_swaps_total"

# Cloud-Run-style processor (services/processor/metrics.py).
PROCESSOR_PUSHES = "hyp_processor_pushes_total"
PROCESSOR_PUSH_SECONDS = "hyp_processor_push_seconds"  # histogram
PROCESSOR_ENDPOINT_SECONDS = "hyp_processor_endpoint_seconds"  # histogram
PROCESSOR_ENDPOINT_INSTANCES = "hyp_processor_endpoint_instances"  # histogram

# Orchestrator (services/orchestrator/metrics.py).
ORCHESTRATOR_RUNS = "hyp_orchestrator_runs_total"
ORCHESTRATOR_RUN_OUTCOMES = "hyp_orchestrator_run_outcomes_total"
ORCHESTRATOR_TRIGGERS_COALESCED = "hyp_orchestrator_triggers_coalesced_total"
ORCHESTRATOR_RUN_IN_PROGRESS = "hyp_orchestrator_run_in_progress"
ORCHESTRATOR_STEP_SECONDS = "hyp_orchestrator_step_seconds"  # histogram
ORCHESTRATOR_DRIFT_PSI = "hyp_orchestrator_drift_psi"
ORCHESTRATOR_DRIFT_KS_STATISTIC = "hyp_orchestrator_drift_ks_statistic"
ORCHESTRATOR_DRIFT_KS_PVALUE = "hyp_orchestrator_drift_ks_pvalue"
ORCHESTRATOR_CHAMPION_VERSION = "hyp_orchestrator_champion_version"
ORCHESTRATOR_SENSOR_FIRED = "hyp_orchestrator_sensor_fired_total"

# The label every sample of a detector worker carries where several share one subscription
WORKER_ID = "worker_id"
