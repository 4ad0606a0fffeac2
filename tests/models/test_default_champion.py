"""The default champion, trained the default way, on the workshop's two canonical purchases.

``hyp up``'s first-champion job runs ``hyp train --bootstrap``: the default model kind on
``HYP_TRAIN_ROWS`` generated purchases (seed ``HYP_SEED``) when the warehouse is empty. The model is
scored through the endpoint's own path (MLflow pyfunc -> ``served`` -> Vertex instances) and the
detector's (``score_rows``). The workshop's normal purchase (its ``purchase.json``: tax 4.90,
shipping 5.99, value 35.43, a blended VAT rate of 13.8 %) must come out normal; the same purchase
at 1,000,000.10 must come out an anomaly.
"""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from models import training
from models.settings import ModelSettings
from services.endpoint.instances import parse_vertex
from services.endpoint.model_source import served
from services.endpoint.serving import predict_rows
from services.training.generated import labelled

NORMAL = {"tax": 4.90, "shipping": 5.99, "value": 35.43}
MILLION = [{"tax": 4.90, "shipping": 5.99, "value": 1_000_000.10}, {"tax": 0.0, "shipping": 0.0, "value": 1_000_000.10}]


@pytest.fixture(scope="module")
def champion():
    # the field defaults, whatever HYP_* variables the test run has
    s = ModelSettings.model_construct(**{name: f.default for name, f in ModelSettings.model_fields.items()})
    rows = labelled(s.train_rows, s.seed, s.anomaly_rate)  # what `hyp train --bootstrap` falls back to
    return training.fit(s.default_model, rows, {}, seed=s.seed, min_rows=s.min_training_rows)


def test_detector_path_scores_the_workshop_purchases(champion):
    out = champion.model.score_rows(pd.DataFrame([NORMAL, *MILLION]))
    assert out["is_anomaly"].tolist() == [False, True, True], out


def test_endpoint_path_scores_the_workshop_purchases(champion, tmp_path):
    mlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=champion.model)
    model = served(mlflow.pyfunc.load_model(str(tmp_path / "m")), version="1", name="champion")
    rows = predict_rows(model, parse_vertex({"instances": [NORMAL, *MILLION]}, 100), vertex=True)
    assert [r["is_anomaly"] for r in rows] == [False, True, True], rows
    assert rows[0]["score"] <= champion.threshold < min(r["score"] for r in rows[1:])
