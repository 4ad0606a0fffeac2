"""End to end in containers: `docker compose up --wait`, 5,000 generated events with labelled anomalies,
detections and warehouse rows with the right counts (DuckDB over the volume, and the workshop's table through
Google's BigQuery client), `docker compose down -v` (the hyp_stack fixture)."""

from __future__ import annotations

import json
import uuid

import pytest

from services.common import names
from services.common.processes import wait_for
from services.common.settings import DETECTIONS_TOPIC
from services.testing.hyp import run_hyp

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EVENTS = 5000


def test_generated_events_reach_detections_and_the_warehouse(hyp_stack):
    run_id = f"e2e-{uuid.uuid4().hex[:8]}"
    detections_sub = hyp_stack.subscription(f"e2e_detections_{run_id[4:]}")
    subscriber = hyp_stack.subscriber()
    subscriber.create_subscription(
        request={"name": detections_sub, "topic": hyp_stack.topic(DETECTIONS_TOPIC), "ack_deadline_seconds": 60}
    )
    loadgen = ["loadgen", "--to", "pubsub", "--emulator-host", hyp_stack.pubsub_host, "--count", str(EVENTS)]
    sent = run_hyp(*loadgen, "--max", "--seed", "7", "--run-id", run_id, "--no-progress", timeout=300)
    assert sent.returncode == 0, sent.stderr
    report = json.loads(sent.stdout.strip().splitlines()[-1])
    assert report["sent"] == EVENTS and report["anomalies"] > 0

    mine = f"{names.attribute_sql('run_id')} = '{run_id}'"
    label = names.LABEL_SQL

    def landed():
        # each event once in the processor's cloud_run and once in the detector's dataflow (the workshop's tables)
        counts = {
            table: hyp_stack.sql(f"SELECT count(DISTINCT message_id) AS n FROM {table} WHERE {mine}")[0]["n"]
            for table in ("cloud_run", "dataflow")
        }
        return counts if counts == {"cloud_run": EVENTS, "dataflow": EVENTS} else None

    wait_for(landed, 240, f"{EVENTS} events in cloud_run (processor) and dataflow (detector)", interval=2.0)

    # the same rows through Google's BigQuery client and the workshop's query (hyp bigquery over the volume)
    bigquery = hyp_stack.bigquery_client()
    workshop = f"SELECT count(*) AS n FROM `{hyp_stack.project}.ecommerce_sink.cloud_run` WHERE event = 'purchase'"
    assert next(iter(bigquery.query(workshop).result()))["n"] >= report["purchases"]

    verdicts = hyp_stack.sql(
        f"""SELECT count(DISTINCT message_id) AS scored,
                   count(DISTINCT message_id) FILTER (WHERE {label}) AS labelled,
                   count(DISTINCT message_id) FILTER (WHERE anomaly) AS flagged,
                   count(DISTINCT message_id) FILTER (WHERE anomaly AND {label}) AS caught
            FROM dataflow_anomaly WHERE {mine}"""
    )[0]
    assert verdicts["scored"] == report["purchases"]
    assert verdicts["labelled"] == report["anomalies"]
    assert verdicts["caught"] >= 0.5 * report["anomalies"], verdicts  # the champion finds most of them
    assert verdicts["caught"] >= 0.8 * verdicts["flagged"], verdicts  # and few false alarms

    # one detection message per flagged purchase, carrying the event's attributes
    seen: set[str] = set()

    def detections():
        response = subscriber.pull(request={"subscription": detections_sub, "max_messages": 1000}, timeout=10)
        for m in response.received_messages:
            if m.message.attributes.get("run_id") == run_id:
                seen.add(json.loads(m.message.data)["transaction_id"])
        if response.received_messages:
            subscriber.acknowledge(
                request={"subscription": detections_sub, "ack_ids": [m.ack_id for m in response.received_messages]}
            )
        return len(seen) >= verdicts["flagged"]

    wait_for(detections, 60, "detections on hyp-detections", interval=0.1)
    assert len(seen) == verdicts["flagged"]
