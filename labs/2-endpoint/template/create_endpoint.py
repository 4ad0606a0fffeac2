"""Challenge 2: create the Vertex AI endpoint your models will be deployed to.

    python create_endpoint.py

On GCP the same in gcloud (reference only):
    gcloud ai endpoints create --region=europe-west1 --display-name=anomaly-detection-endpoint
"""

import os

from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform

aiplatform.init(
    project=os.environ.get("HYP_PROJECT", "hyp-local"),
    location=os.environ.get("HYP_LOCATION", "europe-west1"),
    # the three lines GCP does not need: the local endpoint server, its REST transport, no credentials
    api_endpoint=os.environ.get("HYP_ENDPOINT_URL", "http://127.0.0.1:8080"),
    api_transport="rest",
    credentials=AnonymousCredentials(),
)

# TODO(lab 2): create an endpoint with the display name "anomaly-detection-endpoint"
endpoint = ...

print(f"created {endpoint.resource_name}")
