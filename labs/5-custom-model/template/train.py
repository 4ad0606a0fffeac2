"""Challenge 5: the training code of a custom model, as a Vertex AI custom training job runs it.

You do not run this file yourself: `python run_job.py` hands it to `aiplatform.CustomTrainingJob`, whose SDK
packages it and stages it in the staging bucket; Vertex (here `hyp endpoint`, as a process of this machine)
runs it with AIP_MODEL_DIR set to a Cloud Storage folder (gs://BUCKET/.../model/) and CLOUD_ML_PROJECT_ID.
It reads the purchases with Google's BigQuery client, fits a model and saves it as `model.joblib` in
AIP_MODEL_DIR, the file Vertex's prebuilt scikit-learn serving image loads.
"""

import os

import joblib
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, storage
from sklearn.ensemble import IsolationForest

PROJECT = os.environ.get("CLOUD_ML_PROJECT_ID", "hyp-local")  # Vertex sets it in every training job
MODEL_DIR = os.environ["AIP_MODEL_DIR"]  # gs://BUCKET/.../model/: where the job's model must be saved
FEATURES = ["tax", "shipping", "value"]

# on GCP the job's service account; against hyp bigquery (BIGQUERY_EMULATOR_HOST set) no credentials
credentials = AnonymousCredentials() if os.environ.get("BIGQUERY_EMULATOR_HOST") else None
client = bigquery.Client(project=PROJECT, credentials=credentials)
purchases = client.query_and_wait(
    "SELECT ecommerce.purchase.tax AS tax, ecommerce.purchase.shipping AS shipping, "
    f"ecommerce.purchase.value AS value FROM `{PROJECT}.ecommerce_sink.cloud_run` WHERE event = 'purchase'"
).to_dataframe()
X = purchases[FEATURES].to_numpy(dtype=float)  # the serving container gets instances as [tax, shipping, value]

# TODO(lab 5, gap 1): fit an IsolationForest on X (about 2 % of purchases are anomalies)
model = ...

# TODO(lab 5, gap 2): save `model` as model.joblib, then upload that file into MODEL_DIR (a gs:// folder) with
# the Cloud Storage client
...

print(f"trained on {len(X)} purchases; saved {MODEL_DIR.rstrip('/')}/model.joblib")
