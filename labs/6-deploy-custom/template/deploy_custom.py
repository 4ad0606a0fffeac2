"""Challenge 6: deploy your custom model beside the k-means on the same endpoint, with a traffic split.

    python deploy_custom.py

On GCP the same in gcloud (reference only; `0` is the model being deployed):
    gcloud ai endpoints deploy-model ENDPOINT_ID --region=europe-west1 --model=CUSTOM_MODEL_ID \
        --display-name=custom --traffic-split=0=20,KMEANS_DEPLOYED_MODEL_ID=80
"""

import os
from collections import Counter

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


def newest(resources):
    return max(resources, key=lambda r: r.create_time)


endpoint = newest(aiplatform.Endpoint.list(filter='display_name="anomaly-detection-endpoint"'))
custom = newest(aiplatform.Model.list(filter='display_name="custom-anomaly-detector"'))

# TODO(lab 6): deploy `custom` to `endpoint` with 20 % of the traffic (the k-means keeps the rest)
...

print("traffic split:", endpoint.traffic_split)
answered = Counter(endpoint.predict(instances=[[8.4, 4.99, 40.0]]).deployed_model_id for _ in range(50))
print("50 predictions answered by:", dict(answered))
