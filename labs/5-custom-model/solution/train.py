"""Challenge 5: the training code of a custom model, as a Vertex custom training job runs it.

    python train.py

It reads the purchases with Google's BigQuery client and saves the fitted model as `model.joblib` in
AIP_MODEL_DIR, the folder Vertex gives a training job (here: ./model), the file name Vertex's prebuilt
scikit-learn serving image loads.
"""

import os

import joblib
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from sklearn.ensemble import IsolationForest

PROJECT = os.environ.get("HYP_PROJECT", "hyp-local")
MODEL_DIR = os.environ.get("AIP_MODEL_DIR", "model")
FEATURES = ["tax", "shipping", "value"]

client = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials())
purchases = client.query_and_wait(
    "SELECT ecommerce.purchase.tax AS tax, ecommerce.purchase.shipping AS shipping, "
    f"ecommerce.purchase.value AS value FROM `{PROJECT}.ecommerce_sink.cloud_run` WHERE event = 'purchase'"
).to_dataframe()
X = purchases[FEATURES].to_numpy(dtype=float)  # the serving container gets instances as [tax, shipping, value]

model = IsolationForest(n_estimators=100, contamination=0.02, random_state=0).fit(X)

os.makedirs(MODEL_DIR, exist_ok=True)
joblib.dump(model, os.path.join(MODEL_DIR, "model.joblib"))

print(f"trained on {len(X)} purchases; saved {MODEL_DIR}/model.joblib")
