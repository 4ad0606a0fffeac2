"""Challenge 2: create the endpoint. The check reads the Endpoint resource and calls :predict as the SDK does."""

from __future__ import annotations

import httpx

from services.labs import registry
from services.labs.challenges import NotYet, kmeans
from services.labs.runtime import ensure_mlflow, log, run_hyp, start_endpoint
from services.labs.settings import LabSettings

INSTANCES = [{"tax": 8.4, "shipping": 4.99, "value": 40.0}, {"tax": 0.0, "shipping": 0.0, "value": 1000000.10}]


def ensure_starter(s: LabSettings) -> None:
    """A champion to serve: when there is none yet, a small starter k-means (tagged, so no check counts it)."""
    if registry.champion(s) is not None:
        log(f"{s.model_name}@{s.model_alias} is v{registry.champion(s)}")
        return
    args = ["train", "--model", "kmeans", "--generate", "2000", "--eval-rows", "2000", "--force-promote"]
    run_hyp(s, [*args, "--seed", "3", "--tracking-uri", s.mlflow_tracking_uri])
    version = registry.champion(s)
    if version is not None:
        registry.tag_starter(s, version)
        log(f"starter model: {s.model_name} v{version} is @{s.model_alias}")


def start(s: LabSettings) -> None:
    ensure_mlflow(s)
    if kmeans.candidate(s) is None:
        log("no k-means of yours yet: applying challenge 1's solution first")
        kmeans.solve(s)
    ensure_starter(s)


def resource(s: LabSettings) -> dict:
    try:
        r = httpx.get(s.endpoint_resource_url, timeout=5.0)
    except httpx.HTTPError as exc:
        raise NotYet(
            f"nothing answers at {s.endpoint_url} ({type(exc).__name__}): start the endpoint "
            f"(`hyp endpoint --port {s.endpoint_port} --endpoint-id {s.endpoint_id}`)"
        ) from None
    if r.status_code == 404:
        raise NotYet(f"GET {s.endpoint_resource_url}: 404, is the endpoint id {s.endpoint_id}? ({r.text[:200]})")
    if r.status_code != 200:
        raise NotYet(f"GET {s.endpoint_resource_url}: HTTP {r.status_code} {r.text[:200]}")
    body = r.json()
    expected = s.endpoint_resource_url.split("/v1/", 1)[1]
    if body.get("name") != expected:
        raise NotYet(f"the Endpoint resource is named {body.get('name')!r}, expected {expected!r}")
    if not body.get("deployedModels"):
        raise NotYet("the endpoint has no deployed model: is there a @champion in MLflow?")
    return body


def predict(s: LabSettings) -> dict:
    url = f"{s.endpoint_resource_url}:predict"
    try:
        r = httpx.post(url, json={"instances": INSTANCES}, timeout=10.0)
    except httpx.HTTPError as exc:
        raise NotYet(f"POST {url}: {type(exc).__name__}") from None
    if r.status_code != 200:
        raise NotYet(f"POST {url}: HTTP {r.status_code} {r.text[:300]}")
    body = r.json()
    missing = [k for k in ("predictions", "deployedModelId", "model", "modelVersionId") if k not in body]
    if missing:
        raise NotYet(f":predict answered without {', '.join(missing)}")
    predictions = body["predictions"]
    if len(predictions) != len(INSTANCES) or not all("score" in p and "is_anomaly" in p for p in predictions):
        raise NotYet(f":predict should answer one prediction with score and is_anomaly per instance: {predictions}")
    return body


def check(s: LabSettings) -> str:
    res = resource(s)
    body = predict(s)
    return (
        f"endpoint {res['name']} serves {body['modelDisplayName'] if 'modelDisplayName' in body else body['model']} "
        f"v{body['modelVersionId']}; :predict answered {len(body['predictions'])} predictions"
    )


def solve(s: LabSettings) -> None:
    ensure_mlflow(s)
    ensure_starter(s)
    start_endpoint(s)
