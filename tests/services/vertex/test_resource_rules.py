"""The rules behind the Vertex resource methods, without a server: traffic splits, list filters, which
prebuilt image serves what, and the artifact check an upload goes through."""

from __future__ import annotations

import pytest

from services.endpoint.resources.artifacts import Storage, framework, model_file
from services.endpoint.resources.endpoints import camel, check_split
from services.endpoint.resources.errors import ApiError
from services.endpoint.resources.registry import parse_filter, split_name

pytestmark = pytest.mark.gcp_parity(
    "https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints"
)


def test_a_split_covers_deployed_models_and_sums_to_100():
    assert check_split({"a": 70, "b": 30}, ["a", "b"]) == {"a": 70, "b": 30}
    assert check_split({}, []) == {}
    for split, message in [
        ({"a": 70, "b": 20}, "sum to 90"),
        ({"a": 100, "c": 0}, "`c` is not a deployed model"),
        ({"a": 110, "b": -10}, "not a percentage"),
        ({"a": "100"}, "not a percentage"),
    ]:
        with pytest.raises(ApiError, match=message) as caught:
            check_split(split, ["a", "b"])
        assert caught.value.status == "INVALID_ARGUMENT" and caught.value.http_status == 400


def test_list_filters_match_display_names_and_labels_joined_by_and():
    resource = {"displayName": "fraud", "labels": {"team": "risk"}}
    assert parse_filter("")(resource)
    assert parse_filter('display_name="fraud"')(resource)
    assert parse_filter('display_name="fraud" AND labels.team="risk"')(resource)
    assert not parse_filter('labels.team="ops"')(resource)
    with pytest.raises(ApiError, match="only display_name"):
        parse_filter("create_time>2020")


@pytest.mark.parametrize(
    ("image", "kind"),
    [
        ("europe-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-5:latest", "sklearn"),
        ("us-docker.pkg.dev/vertex-ai/prediction/xgboost-cpu.1-7:latest", "xgboost"),
        ("us-docker.pkg.dev/vertex-ai/prediction/tf2-gpu.2-12:latest", "tf2"),
        ("europe-west1-docker.pkg.dev/my-project/repo/server:1", None),
    ],
)
def test_the_prebuilt_framework_comes_from_the_image_uri_as_vertex_reads_it(image, kind):
    assert framework(image) == kind


def test_an_upload_needs_exactly_one_of_the_images_model_files(tmp_path):
    image = "europe-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-5:latest"
    storage = Storage(None)
    (tmp_path / "weights.h5").write_bytes(b"x")
    with pytest.raises(ApiError, match=r"exactly one of: \[model\.joblib, model\.pkl\]"):
        model_file(image, str(tmp_path), storage)
    (tmp_path / "model.pkl").write_bytes(b"x")
    assert model_file(image, str(tmp_path), storage) == "model.pkl"
    (tmp_path / "model.joblib").write_bytes(b"x")
    with pytest.raises(ApiError, match=r"found model\.joblib, model\.pkl"):
        model_file(image, str(tmp_path), storage)
    assert model_file("my-registry/server:1", str(tmp_path), storage) is None  # a custom container's own business
    with pytest.raises(ApiError, match="STORAGE_EMULATOR_HOST") as caught:
        model_file(image, "gs://bucket/model", storage)  # no hyp storage configured
    assert caught.value.status == "FAILED_PRECONDITION"


def test_names_and_masks():
    assert split_name("projects/p/locations/l/models/m@2") == ("m", "2")
    assert split_name("m") == ("m", None)
    assert camel("traffic_split") == "trafficSplit" and camel("trafficSplit") == "trafficSplit"
