"""The inference processing service (the workshop's Cloud Run service), template: fill the four gaps marked TODO.

Pub/Sub pushes every event here. For a purchase we ask the endpoint whether it looks anomalous and
store the answer in the BigQuery table ``ecommerce_sink.cloud_run_anomaly`` with Google's BigQuery client, as
the workshop's service does (``BIGQUERY_EMULATOR_HOST`` points the client at ``hyp bigquery``). Run it with:

    python -m uvicorn main:app --app-dir .hyp/lab/work/4-processor --port 8081
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

ENDPOINT_URL = os.environ.get("HYP_ENDPOINT_URL", "http://127.0.0.1:8080").rstrip("/")
PROJECT = os.environ.get("HYP_PROJECT", "hyp-local")
LOCATION = os.environ.get("HYP_LOCATION", "europe-west1")
ENDPOINT_ID = os.environ.get("HYP_ENDPOINT_ID", "1")
TABLE_ID = f"{PROJECT}.ecommerce_sink.cloud_run_anomaly"
PREDICT_URL = f"{ENDPOINT_URL}/v1/projects/{PROJECT}/locations/{LOCATION}/endpoints/{ENDPOINT_ID}:predict"

app = FastAPI(title="lab 4: inference processing service")
http = httpx.Client(timeout=10.0)
# the workshop's client; the emulator host comes from BIGQUERY_EMULATOR_HOST, and hyp-local needs no login
client = bigquery.Client(project=PROJECT, location=LOCATION, credentials=AnonymousCredentials())


def decode(envelope: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], str]:
    """A push envelope -> (the event, the message attributes, the message id)."""
    # TODO(lab 4, gap 1): the event is JSON, base64-encoded in envelope["message"]["data"];
    # the attributes and the id are in the same "message" object.
    raise NotImplementedError("gap 1: decode the push envelope")


def instance(event: dict[str, Any]) -> dict[str, float]:
    """The features the model takes, from the purchase block of the event."""
    # TODO(lab 4, gap 2): the model takes tax, shipping and value, as numbers.
    raise NotImplementedError("gap 2: build the instance")


def predict(features: dict[str, float]) -> tuple[dict[str, Any], str]:
    """Ask the endpoint: (the one prediction, the model version that answered)."""
    # TODO(lab 4, gap 3): POST {"instances": [...]} to PREDICT_URL; the answer holds "predictions"
    # (one per instance) and "modelVersionId".
    raise NotImplementedError("gap 3: call the endpoint")


def anomaly_row(
    event: dict[str, Any], features: dict[str, float], prediction: dict[str, Any], version: str, message_id: str, attributes: dict[str, str]
) -> dict[str, Any]:
    """One row of cloud_run_anomaly, as JSON values (given: you do not need to change it)."""
    centroid = prediction.get("nearest_centroid_id")
    return {
        "event_datetime": event["event_datetime"],
        "transaction_id": event["ecommerce"]["purchase"].get("transaction_id"),
        "user_id": event.get("user_id"),
        **features,
        "anomaly": bool(prediction["is_anomaly"]),
        "score": prediction.get("score"),
        "nearest_centroid_id": centroid[0] if isinstance(centroid, list) and centroid else None,
        "normalized_distance": prediction.get("normalized_distance"),
        "model_version": version,
        "message_id": message_id,
        "attributes": json.dumps(attributes, sort_keys=True),
        "source": "lab-4",
        "scored_at": datetime.now(UTC).isoformat(),
    }


@app.post("/")
def push(envelope: dict[str, Any]) -> Response:
    try:
        event, attributes, message_id = decode(envelope)
    except (KeyError, ValueError) as exc:
        return Response(f"not a push envelope: {exc}", status_code=400)  # Pub/Sub retries, then dead-letters
    if event.get("event") != "purchase":
        return Response(status_code=204)  # only purchases are scored
    features = instance(event)
    prediction, version = predict(features)
    # TODO(lab 4, gap 4): insert anomaly_row(...) into TABLE_ID with client.insert_rows_json(table, rows);
    # it returns the rows BigQuery refused (an empty list when all went in).
    raise NotImplementedError("gap 4: write the row")
    return Response(status_code=204)  # 2xx acks the message


@app.get("/health")
def health(request: Request) -> dict[str, str]:
    return {"status": "ok", "predict_url": PREDICT_URL}
