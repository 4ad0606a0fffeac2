"""Challenge 5: train the custom model in a Vertex AI custom training job, which registers what it saves.

    python run_job.py

`aiplatform.CustomTrainingJob` packages train.py, stages it in the staging bucket (Cloud Storage: hyp storage
here) and starts a training pipeline; Vertex runs the script in its prebuilt scikit-learn training image (here:
as a process of this machine, with this machine's packages), and when it succeeds uploads the folder the script
saved into (AIP_MODEL_DIR) as a model served by the prebuilt scikit-learn prediction image. `job.run` waits for
that and returns the model, which challenge 6 deploys. On GCP the same in gcloud (reference only; a custom
job runs the script, the upload is a second command, and Vertex sets AIP_MODEL_DIR only when the job's
config names a baseOutputDirectory):
    gcloud ai custom-jobs create --region=europe-west1 --display-name=custom-anomaly-detector \
        --config=config.yaml \
        --worker-pool-spec=machine-type=n1-standard-4,replica-count=1,executor-image-uri=europe-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-0:latest,local-package-path=.,script=train.py
    gcloud ai models upload --region=europe-west1 --display-name=custom-anomaly-detector \
        --container-image-uri=europe-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-5:latest \
        --artifact-uri=gs://BUCKET/OUTPUT_DIR/model
"""

import os

from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform

TRAINING_IMAGE = "europe-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-0:latest"
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

job = aiplatform.CustomTrainingJob(
    display_name="custom-anomaly-detector",
    script_path="train.py",
    container_uri=TRAINING_IMAGE,
    requirements=["google-cloud-bigquery[pandas]", "google-cloud-storage"],
    model_serving_container_image_uri=SKLEARN_IMAGE,
)
model = job.run(model_display_name="custom-anomaly-detector", replica_count=1)

print(f"trained and uploaded {model.resource_name} (version {model.version_id}) from {model.uri}")
