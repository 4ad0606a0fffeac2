"""Challenge 3: deploy challenge 1's k-means (Vertex model `anomaly_detection`) to your endpoint and predict.

    python deploy.py

On GCP the same in gcloud (reference only):
    gcloud ai endpoints list --region=europe-west1 --filter=display_name=anomaly-detection-endpoint
    gcloud ai endpoints deploy-model ENDPOINT_ID --region=europe-west1 --model=anomaly_detection \
        --display-name=kmeans --traffic-split=0=100
    gcloud ai endpoints predict ENDPOINT_ID --region=europe-west1 --json-request=request.json
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

endpoints = aiplatform.Endpoint.list(filter='display_name="anomaly-detection-endpoint"')
endpoint = max(endpoints, key=lambda e: e.create_time)  # the newest, if you created it more than once
model = aiplatform.Model("anomaly_detection")  # MODEL_REGISTRY='VERTEX_AI' registered it under this id

# TODO(lab 3): deploy `model` to `endpoint` with all of the traffic
...

response = endpoint.predict(instances=[{"tax": 8.4, "shipping": 4.99, "value": 40.0}])
print(response.predictions, f"deployed model {response.deployed_model_id}, version {response.model_version_id}")
