"""Challenge 5: register the trained artifact in Vertex AI's Model Registry with `Model.upload`.

    python upload.py

The SDK stages the local ./model folder in the staging bucket (Cloud Storage: hyp storage here), then
registers a model served by Vertex's prebuilt scikit-learn image. On GCP the same in gcloud (reference
only; gcloud wants the folder in a bucket first):
    gcloud storage cp -r model gs://BUCKET/custom-anomaly-detector/
    gcloud ai models upload --region=europe-west1 --display-name=custom-anomaly-detector \
        --container-image-uri=europe-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-5:latest \
        --artifact-uri=gs://BUCKET/custom-anomaly-detector/model
"""

import os

from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform

SKLEARN_IMAGE = "europe-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-5:latest"

aiplatform.init(
    project=os.environ.get("HYP_PROJECT", "hyp-local"),
    location=os.environ.get("HYP_LOCATION", "europe-west1"),
    staging_bucket=f"gs://{os.environ.get('HYP_LAB_STAGING_BUCKET', 'hyp-lab-staging')}",
    # the three lines GCP does not need: the local endpoint server, its REST transport, no credentials
    api_endpoint=os.environ.get("HYP_ENDPOINT_URL", "http://127.0.0.1:8080"),
    api_transport="rest",
    credentials=AnonymousCredentials(),
)

# TODO(lab 5, gap 3): upload the folder "model" as "custom-anomaly-detector", served by SKLEARN_IMAGE
model = ...

print(f"uploaded {model.resource_name} (version {model.version_id}) from {model.uri}")
