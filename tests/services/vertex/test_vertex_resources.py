"""Model.upload -> Endpoint.create -> deploy -> predict -> traffic split -> undeploy -> delete, through
google-cloud-aiplatform (only ``aiplatform.init``'s endpoint, transport and credentials changed) against
`hyp endpoint` and `hyp storage` as real processes, the MLflow registry behind them."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from google.api_core import exceptions

from models.registry import client
from services.testing.vertex import SKLEARN_IMAGE
from tests.services.vertex.conftest import artifact_dir, classifier, upload_folder

pytestmark = [pytest.mark.integration]

X = [[1.0, 2.0], [-3.0, -1.0], [0.5, -0.2]]
XGBOOST_IMAGE = "europe-docker.pkg.dev/vertex-ai/prediction/xgboost-cpu.2-1:latest"
TF_IMAGE = "europe-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
SPLIT_REQUESTS = 1000
# 70/30 over 1,000 independent draws: the standard deviation of the 70% share is 1.45 points; a
# tolerance of 6 points is over 4 of them (a false failure about once in 30,000 runs).
SPLIT_TOLERANCE = 0.06


@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/general/deployment")
def test_upload_deploy_predict_split_undeploy_delete(aiplatform, gcs, tmp_path):
    a, b = classifier(), classifier(flip=True)
    local = artifact_dir(tmp_path, a)  # staged by the SDK into the staging bucket
    remote = upload_folder(gcs, artifact_dir(tmp_path, b, "model.pkl"), "hyp-vertex-models")

    model_a = aiplatform.Model.upload(
        display_name="fraud-a", artifact_uri=str(local), serving_container_image_uri=SKLEARN_IMAGE
    )
    model_b = aiplatform.Model.upload(
        display_name="fraud-b", artifact_uri=remote, serving_container_image_uri=SKLEARN_IMAGE, sync=False
    )
    model_b.wait()
    assert model_a.version_id == "1" and "default" in model_a.version_aliases
    assert model_a.uri.startswith("gs://hyp-vertex-staging/vertex_ai_auto_staging/")
    assert model_b.uri == remote
    [listed] = aiplatform.Model.list(filter='display_name="fraud-a"')
    assert listed.resource_name == model_a.resource_name

    endpoint = aiplatform.Endpoint.create(display_name="fraud")
    assert endpoint.resource_name in [e.resource_name for e in aiplatform.Endpoint.list()]
    model_a.deploy(endpoint=endpoint)
    response = endpoint.predict(instances=X)
    assert response.predictions == a.predict(np.array(X)).tolist()
    [deployed_a] = endpoint.list_models()
    assert (response.deployed_model_id, response.model_version_id) == (deployed_a.id, "1")
    assert response.model_resource_name == model_a.resource_name

    model_b.deploy(endpoint=endpoint, traffic_percentage=30)
    split = endpoint.traffic_split
    deployed_b = next(d for d in endpoint.list_models() if d.id != deployed_a.id)
    assert split == {deployed_a.id: 70, deployed_b.id: 30}
    expected = {deployed_a.id: a.predict(np.array(X)).tolist(), deployed_b.id: b.predict(np.array(X)).tolist()}
    seen: Counter[str] = Counter()
    for _ in range(SPLIT_REQUESTS):
        r = endpoint.predict(instances=X)
        assert r.predictions == expected[r.deployed_model_id]  # each answer comes from the model it names
        seen[r.deployed_model_id] += 1
    assert abs(seen[deployed_a.id] / SPLIT_REQUESTS - 0.70) <= SPLIT_TOLERANCE, seen

    endpoint.update(traffic_split={deployed_a.id: 0, deployed_b.id: 100})  # all traffic to b, a still deployed
    assert endpoint.traffic_split == {deployed_a.id: 0, deployed_b.id: 100}
    assert {endpoint.predict(instances=X).deployed_model_id for _ in range(20)} == {deployed_b.id}
    endpoint.undeploy(deployed_a.id)
    assert endpoint.traffic_split == {deployed_b.id: 100}
    assert endpoint.predict(instances=X).deployed_model_id == deployed_b.id
    endpoint.undeploy_all()
    assert endpoint.list_models() == []
    endpoint.delete()
    assert endpoint.resource_name not in [e.resource_name for e in aiplatform.Endpoint.list()]
    model_a.delete()
    model_b.delete()
    assert aiplatform.Model.list(filter='display_name="fraud-a"') == []
    with pytest.raises(exceptions.NotFound):
        aiplatform.Model(model_a.resource_name)


@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/model-registry/model-alias")
def test_versions_and_aliases_are_mlflow_versions_and_aliases(aiplatform, champion, tmp_path):
    first = aiplatform.Model.upload(
        display_name="churn",
        artifact_uri=str(artifact_dir(tmp_path, classifier())),
        serving_container_image_uri=SKLEARN_IMAGE,
        labels={"team": "risk"},
    )
    second = aiplatform.Model.upload(
        display_name="churn",
        parent_model=first.resource_name,
        artifact_uri=str(artifact_dir(tmp_path, classifier(flip=True))),
        serving_container_image_uri=SKLEARN_IMAGE,
        version_aliases=["challenger"],
        is_default_version=False,
    )
    try:
        assert (first.version_id, second.version_id) == ("1", "2")
        assert second.resource_name == first.resource_name
        versions = aiplatform.models.ModelRegistry(first.resource_name).list_versions()
        assert [(v.version_id, v.version_aliases) for v in versions] == [("1", ["default"]), ("2", ["challenger"])]
        by_alias = aiplatform.Model(first.resource_name, version="challenger")
        assert by_alias.version_id == "2"
        assert aiplatform.Model(first.resource_name).version_id == "1"  # the default version
        assert aiplatform.Model.list(filter='labels.team="risk"')[0].resource_name == first.resource_name
        # the other view: MLflow's registered model, its versions and aliases
        mlflow = client(champion.tracking_uri)
        model_id = first.name
        assert mlflow.get_model_version_by_alias(model_id, "challenger").version == "2"
        assert mlflow.get_model_version(model_id, "2").source == second.uri
        registry = aiplatform.models.ModelRegistry(first.resource_name)
        registry.add_version_aliases(["prod"], version="2")
        registry.remove_version_aliases(["challenger"], version="2")
        assert aiplatform.Model(first.resource_name, version="prod").version_aliases == ["prod"]
        assert mlflow.get_registered_model(model_id).aliases == {"default": "1", "prod": "2"}
        with pytest.raises(exceptions.BadRequest, match="is the default version"):
            registry.delete_version("1")
        registry.delete_version("2")
        assert [v.version_id for v in registry.list_versions()] == ["1"]
    finally:
        first.delete()


@pytest.mark.local_only("purchase-anomaly, its @champion and endpoint 1 are hyp-local's registry and stack")
def test_the_champion_is_a_vertex_model_and_endpoint_1_keeps_following_it(aiplatform, champion):
    model = aiplatform.Model(f"projects/hyp-local/locations/europe-west1/models/{champion.model_name}")
    assert model.version_id == champion.version and "champion" in model.version_aliases
    endpoint_1 = aiplatform.Endpoint("projects/hyp-local/locations/europe-west1/endpoints/1")
    response = endpoint_1.predict(instances=[{"tax": 7.6, "shipping": 4.99, "value": 40.0}])
    assert response.model_version_id == champion.version
    with pytest.raises(exceptions.BadRequest, match="follows that alias"):  # FAILED_PRECONDITION is HTTP 400
        model.deploy(endpoint=endpoint_1)
    # deployed on an endpoint of its own, the MLflow model answers as on endpoint 1
    other = aiplatform.Endpoint.create(display_name="kmeans")
    try:
        model.deploy(endpoint=other)
        again = other.predict(instances=[{"tax": 7.6, "shipping": 4.99, "value": 40.0}])
        assert again.predictions == response.predictions and again.model_version_id == champion.version
    finally:
        other.delete(force=True)


@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/predictions/pre-built-containers")
def test_bad_input_gets_vertex_errors_and_leaves_nothing_half_deployed(aiplatform, gcs, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "weights.h5").write_bytes(b"not a model")
    unknown = upload_folder(gcs, weights, "hyp-vertex-models")
    with pytest.raises(exceptions.BadRequest, match=r"exactly one of: \[model\.joblib, model\.pkl\]"):
        aiplatform.Model.upload(display_name="bad", artifact_uri=unknown, serving_container_image_uri=SKLEARN_IMAGE)
    assert aiplatform.Model.list(filter='display_name="bad"') == []

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.joblib").write_bytes(b"not a pickle")
    broken = aiplatform.Model.upload(
        display_name="broken", artifact_uri=str(corrupt), serving_container_image_uri=SKLEARN_IMAGE
    )
    good = aiplatform.Model.upload(
        display_name="good",
        artifact_uri=str(artifact_dir(tmp_path, classifier())),
        serving_container_image_uri=SKLEARN_IMAGE,
    )
    endpoint = aiplatform.Endpoint.create(display_name="bad-input")
    try:
        with pytest.raises(exceptions.GoogleAPICallError, match=r"model\.joblib: cannot be loaded"):
            broken.deploy(endpoint=endpoint)
        assert endpoint.list_models() == [] and endpoint.traffic_split == {}
        missing = aiplatform.Endpoint.create(display_name="gone")
        missing.delete()
        with pytest.raises(exceptions.NotFound, match=missing.resource_name):
            good.deploy(endpoint=missing)
        good.deploy(endpoint=endpoint)
        [deployed] = endpoint.list_models()
        with pytest.raises(ValueError, match="needs to be 100"):  # the SDK checks a split itself...
            good.deploy(endpoint=endpoint, traffic_split={"0": 50, deployed.id: 100})
        with pytest.raises(exceptions.BadRequest, match="sum to 150; they must sum to 100"):  # ...and so does the API
            endpoint.api_client.deploy_model(
                endpoint=endpoint.resource_name,
                deployed_model={"model": good.versioned_resource_name},
                traffic_split={"0": 50, deployed.id: 100},
            )
        assert [d.id for d in endpoint.list_models()] == [deployed.id]
        assert endpoint.traffic_split == {deployed.id: 100}
        with pytest.raises(exceptions.BadRequest, match="deployed on"):
            good.delete()
    finally:
        endpoint.delete(force=True)
        broken.delete()
        good.delete()


@pytest.mark.local_only("--state-dir: the endpoint process keeps the endpoints it was given across a restart")
def test_endpoints_and_deployments_survive_a_restart_with_a_state_dir(storage_server, champion, monkeypatch, tmp_path):
    import os

    from services.testing.hyp import HypProcess
    from services.testing.vertex import vertex_init

    env = {**os.environ, "MLFLOW_TRACKING_URI": champion.tracking_uri, "STORAGE_EMULATOR_HOST": storage_server.url}
    server = HypProcess("endpoint", "--state-dir", str(tmp_path / "state"), log_path=tmp_path / "e.log", env=env)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_server.url)
    with server.start(timeout=120):
        aiplatform = vertex_init(server.url, staging_bucket="gs://hyp-vertex-staging")
        a = classifier()
        model = aiplatform.Model.upload(
            display_name="kept",
            artifact_uri=str(artifact_dir(tmp_path, a)),
            serving_container_image_uri=SKLEARN_IMAGE,
        )
        endpoint = aiplatform.Endpoint.create(display_name="kept")
        model.deploy(endpoint=endpoint)
        before = endpoint.predict(instances=X)
        server.stop()
        server.start(timeout=120)
        again = aiplatform.Endpoint(endpoint.resource_name)
        after = again.predict(instances=X)
        assert (after.deployed_model_id, after.predictions) == (before.deployed_model_id, before.predictions)
        assert again.traffic_split == {before.deployed_model_id: 100}
        again.delete(force=True)
        model.delete()


@pytest.mark.local_only("a full disk under the endpoint process's --state-dir")
def test_a_full_disk_refuses_to_save_an_endpoint_and_says_so(storage_server, champion, tmp_path):
    import os

    from services.testing.hyp import HypProcess
    from services.testing.vertex import vertex_init
    from tests.fixtures.diskfull import disk_full

    env = {**os.environ, "MLFLOW_TRACKING_URI": champion.tracking_uri, "STORAGE_EMULATOR_HOST": storage_server.url}
    state = tmp_path / "state"
    server = HypProcess("endpoint", "--state-dir", str(state), log_path=tmp_path / "e.log", env=env)
    with server.start(timeout=120):
        assert server.process is not None
        aiplatform = vertex_init(server.url)
        aiplatform.Endpoint.create(display_name="kept")
        with disk_full(server.process.pid, limit=16), pytest.raises(exceptions.ServiceUnavailable) as err:
            aiplatform.Endpoint.create(display_name="unsaved")
        assert "cannot write its state folder (File too large)" in str(err.value)
        assert "a restart would undo it" in str(err.value)
        assert [p.name for p in state.iterdir()] == ["endpoints.json"]  # the old file, no temporary one
        server.stop()
        server.start(timeout=120)  # the state file was left whole: what was saved comes back
        names = [e.display_name for e in aiplatform.Endpoint.list()]
        assert "kept" in names and "unsaved" not in names


@pytest.mark.local_only("a model registered in MLflow alone is a Vertex model here: the one registry, two views")
def test_a_plain_scikit_learn_mlflow_model_deploys_and_answers(aiplatform, champion):
    import uuid

    import mlflow

    from models.registry import use_tracking_uri

    name = f"plain-sklearn-{uuid.uuid4().hex[:6]}"
    a = classifier()
    with use_tracking_uri(champion.tracking_uri), mlflow.start_run():
        mlflow.sklearn.log_model(a, name="model", registered_model_name=name)
    model = aiplatform.Model(name)
    assert model.version_id == "1" and "default" in model.version_aliases
    endpoint = aiplatform.Endpoint.create(display_name="plain")
    try:
        model.deploy(endpoint=endpoint)
        response = endpoint.predict(instances=X)
        assert response.predictions == a.predict(np.array(X)).tolist()
        assert response.model_resource_name.endswith(f"/models/{name}")
    finally:
        endpoint.delete(force=True)
        model.delete()


@pytest.mark.slow  # TensorFlow's import, here and in the endpoint
@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/predictions/pre-built-containers")
def test_xgboost_and_tensorflow_artifacts_deploy_from_their_prebuilt_images(aiplatform, gcs, tmp_path):
    import tensorflow as tf
    import xgboost

    rng = np.random.default_rng(5)
    features = rng.normal(size=(200, 2))
    booster = xgboost.train(
        {"objective": "binary:logistic"}, xgboost.DMatrix(features, label=features.sum(axis=1) > 0), 4
    )
    bst = tmp_path / "xgb"
    bst.mkdir()
    booster.save_model(bst / "model.bst")
    module = tf.Module()
    module.w = tf.Variable([[1.0], [2.0]])
    module.serve = tf.function(
        lambda x: {"score": tf.matmul(x, module.w)}, input_signature=[tf.TensorSpec([None, 2], tf.float32)]
    )
    saved = tmp_path / "saved"
    tf.saved_model.save(module, str(saved), signatures={"serving_default": module.serve})
    xgb_model = aiplatform.Model.upload(
        display_name="xgb",
        artifact_uri=upload_folder(gcs, bst, "hyp-vertex-models"),
        serving_container_image_uri=XGBOOST_IMAGE,
    )
    tf_model = aiplatform.Model.upload(  # a local SavedModel folder (variables/ inside) staged by the SDK
        display_name="saved", artifact_uri=str(saved), serving_container_image_uri=TF_IMAGE
    )
    endpoint = aiplatform.Endpoint.create(display_name="frameworks")
    other = aiplatform.Endpoint.create(display_name="frameworks-tf")
    try:
        xgb_model.deploy(endpoint=endpoint)
        tf_model.deploy(endpoint=other)
        expected = booster.predict(xgboost.DMatrix(np.array(X))).tolist()
        assert endpoint.predict(instances=X).predictions == pytest.approx(expected)
        [[a], [b], [c]] = other.predict(instances=X).predictions  # one output: each prediction is its row
        assert [a, b, c] == pytest.approx([5.0, -5.0, 0.1], abs=1e-6)  # float32
    finally:
        endpoint.delete(force=True)
        other.delete(force=True)
        xgb_model.delete()
        tf_model.delete()
