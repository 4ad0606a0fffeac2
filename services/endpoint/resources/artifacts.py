"""Model artifacts: which prebuilt container an image URI names, the files it needs, and loading them.

Vertex picks how to serve an uploaded model from ``containerSpec.imageUri``: a prebuilt image
(``<region>-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-3:latest``) loads a model file from
``artifactUri``; any other image is the user's own container. Here the prebuilt scikit-learn
convention is served in process (``model.joblib`` with joblib, ``model.pkl`` with pickle, as
Google's container does): no image is pulled. Artifacts live on ``hyp storage`` (``gs://``, reached at
``STORAGE_EMULATOR_HOST`` over Cloud Storage's JSON API) or in a local folder.

Loading a pickle runs code from the artifact, exactly as the prebuilt container does: deploy only
artifacts you trust.
"""

from __future__ import annotations

import pickle
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import orjson

from services.endpoint.resources.errors import ApiError, invalid

PREBUILT = re.compile(
    r"^(?:(?:us|europe|asia)-docker\.pkg\.dev/vertex-ai/prediction|gcr\.io/cloud-aiplatform/prediction)/"
    r"(?P<framework>[a-z0-9]+?)-(?:cpu|gpu)\b"
)
# the files each prebuilt framework's container looks for in artifactUri (exactly one of them)
MODEL_FILES = {
    "sklearn": ("model.joblib", "model.pkl"),
    "xgboost": ("model.bst", "model.joblib", "model.pkl"),
    "tf2": ("saved_model.pb", "saved_model.pbtxt"),
    "tf": ("saved_model.pb", "saved_model.pbtxt"),
}
SERVED_IN_PROCESS = ("sklearn",)


def framework(image_uri: str) -> str | None:
    """The prebuilt framework an image URI names (``sklearn``, ``xgboost``, ``tf2``), None for a custom image."""
    found = PREBUILT.match(image_uri or "")
    return found.group("framework") if found else None


class Storage:
    """Cloud Storage's JSON API at ``host`` (``hyp storage``), just what reading artifacts needs."""

    def __init__(self, host: str | None) -> None:
        if host and "://" not in host:
            host = "http://" + host
        self.host = host.rstrip("/") if host else None

    def _base(self, uri: str) -> str:
        if self.host is None:
            raise ApiError(
                "FAILED_PRECONDITION",
                f"artifact `{uri}`: gs:// artifacts are read from hyp storage; start the endpoint with "
                "STORAGE_EMULATOR_HOST set to its address",
            )
        return self.host

    def list_folder(self, uri: str) -> list[str]:
        """The object names directly in the folder ``gs://bucket/prefix`` (names relative to it)."""
        import httpx

        bucket, prefix = split_gs(uri)
        params: dict[str, str] = {"prefix": prefix, "delimiter": "/"}
        found: list[str] = []
        with httpx.Client(base_url=self._base(uri), timeout=30, trust_env=False) as http:
            while True:
                r = http.get(f"/storage/v1/b/{quote(bucket, safe='')}/o", params=params)
                if r.status_code == 404:
                    raise ApiError("NOT_FOUND", f"artifact `{uri}`: bucket `{bucket}` not found")
                r.raise_for_status()
                page = r.json()
                found += [item["name"][len(prefix) :] for item in page.get("items", [])]
                token = page.get("nextPageToken")
                if not token:
                    return found
                params["pageToken"] = token

    def download(self, uri: str, name: str, dest: Path) -> Path:
        import httpx

        bucket, prefix = split_gs(uri)
        url = f"/download/storage/v1/b/{quote(bucket, safe='')}/o/{quote(prefix + name, safe='')}"
        with httpx.Client(base_url=self._base(uri), timeout=60, trust_env=False) as http:
            r = http.get(url, params={"alt": "media"})
            r.raise_for_status()
        target = dest / name
        target.write_bytes(r.content)
        return target


def split_gs(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ("bucket", "a/b/"): the folder prefix always ends with a slash (or is empty)."""
    if not uri.startswith("gs://"):
        raise invalid(f"artifact_uri `{uri}`: expected gs://BUCKET/PATH")
    bucket, _, path = uri[len("gs://") :].partition("/")
    if not bucket:
        raise invalid(f"artifact_uri `{uri}`: no bucket")
    path = path.strip("/")
    return bucket, path + "/" if path else ""


def files_in(uri: str, storage: Storage) -> list[str]:
    """The files directly in an artifact folder: ``gs://`` on hyp storage or a local directory."""
    if uri.startswith("gs://"):
        return storage.list_folder(uri)
    folder = Path(uri)
    if not folder.is_dir():
        raise invalid(f"artifact_uri `{uri}`: not a gs:// URI or an existing local directory")
    return [p.name for p in folder.iterdir() if p.is_file()]


def model_file(image_uri: str, artifact_uri: str, storage: Storage) -> str | None:
    """The model file a prebuilt image will load from ``artifact_uri``; INVALID_ARGUMENT naming the
    expected files when the folder holds none (or several) of them. None for a custom image."""
    kind = framework(image_uri)
    if kind is None:
        return None
    expected = MODEL_FILES.get(kind)
    if expected is None:
        raise invalid(f"serving_container_image_uri `{image_uri}`: unknown prebuilt framework `{kind}`")
    if not artifact_uri:
        raise invalid(f"artifact_uri is required with the prebuilt image `{image_uri}`")
    present = [name for name in expected if name in set(files_in(artifact_uri, storage))]
    if len(present) != 1:
        raise invalid(
            f"Model directory {artifact_uri} is expected to contain exactly one of: [{', '.join(expected)}]"
            + (f" (found {', '.join(present)})" if present else "")
        )
    return present[0]


@dataclass(frozen=True)
class SklearnModel:
    """A prebuilt scikit-learn artifact served in process: ``instances`` (lists of features) ->
    ``model.predict(numpy.array(instances))``, as Google's container answers."""

    estimator: Any

    def predict_json(self, instances: Sequence[Any]) -> bytes:
        try:
            X = np.asarray(instances, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise invalid(f"instances: expected lists of numbers for a scikit-learn model ({exc})") from None
        if X.ndim == 1:  # one number per instance: one feature
            X = X.reshape(-1, 1)
        try:
            out = self.estimator.predict(X)
        except ValueError as exc:
            raise invalid(f"instances: {exc}") from None
        return orjson.dumps(np.asarray(out), option=orjson.OPT_SERIALIZE_NUMPY)


def load_prebuilt(image_uri: str, artifact_uri: str, storage: Storage) -> SklearnModel:
    """Fetch and load a prebuilt-container artifact; FAILED_PRECONDITION for what is not served in process."""
    kind = framework(image_uri)
    if kind is None:
        raise ApiError(
            "FAILED_PRECONDITION",
            f"custom container `{image_uri}`: only Vertex's prebuilt scikit-learn images are served here so far",
        )
    if kind not in SERVED_IN_PROCESS:
        raise ApiError("FAILED_PRECONDITION", f"prebuilt `{kind}` images are not served in process yet (sklearn is)")
    name = model_file(image_uri, artifact_uri, storage)
    assert name is not None
    with tempfile.TemporaryDirectory(prefix="hyp-vertex-model-") as tmp:
        path = storage.download(artifact_uri, name, Path(tmp)) if artifact_uri.startswith("gs://") else None
        path = path or Path(artifact_uri) / name
        try:
            if name.endswith(".joblib"):
                import joblib

                estimator = joblib.load(path)
            else:
                with open(path, "rb") as f:
                    estimator = pickle.load(f)
        except Exception as exc:
            raise invalid(f"{artifact_uri}/{name}: cannot be loaded ({type(exc).__name__}: {exc})") from None
    if not hasattr(estimator, "predict"):
        raise invalid(f"{artifact_uri}/{name}: holds a {type(estimator).__name__}, which has no predict()")
    return SklearnModel(estimator)
