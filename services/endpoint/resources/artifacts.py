"""Model artifacts: which prebuilt container an image URI names, the files it needs, and fetching them.

Vertex picks how to serve an uploaded model from ``containerSpec.imageUri``: a prebuilt image
(``<region>-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-3:latest``) loads a model file from
``artifactUri``; any other image is the user's own container. The prebuilt conventions are served in
process (:mod:`services.endpoint.resources.prebuilt`): no image is pulled. Artifacts live on
``hyp storage`` (``gs://``, reached at ``STORAGE_EMULATOR_HOST`` over Cloud Storage's JSON API) or in a
local folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

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

    def list_tree(self, uri: str) -> list[str]:
        """Every object under the folder ``gs://bucket/prefix``, sub-folders included (names relative to it)."""
        import httpx

        bucket, prefix = split_gs(uri)
        params: dict[str, str] = {"prefix": prefix}
        found: list[str] = []
        with httpx.Client(base_url=self._base(uri), timeout=30, trust_env=False) as http:
            while True:
                r = http.get(f"/storage/v1/b/{quote(bucket, safe='')}/o", params=params)
                r.raise_for_status()
                page = r.json()
                found += [item["name"][len(prefix) :] for item in page.get("items", [])]
                if not page.get("nextPageToken"):
                    return [name for name in found if name and not name.endswith("/")]
                params["pageToken"] = page["nextPageToken"]

    def download(self, uri: str, name: str, dest: Path) -> Path:
        """The object ``name`` of the folder ``uri`` as ``dest / name`` (sub-folders made as needed)."""
        import httpx

        if ".." in Path(name).parts:
            raise invalid(f"artifact `{uri}`: object name `{name}` leaves the folder")
        bucket, prefix = split_gs(uri)
        url = f"/download/storage/v1/b/{quote(bucket, safe='')}/o/{quote(prefix + name, safe='')}"
        with httpx.Client(base_url=self._base(uri), timeout=60, trust_env=False) as http:
            r = http.get(url, params={"alt": "media"})
            r.raise_for_status()
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
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
        served = ", ".join(sorted(MODEL_FILES))
        raise invalid(
            f"serving_container_image_uri `{image_uri}`: prebuilt `{kind}` images are not served here ({served} are)"
        )
    if not artifact_uri:
        raise invalid(f"artifact_uri is required with the prebuilt image `{image_uri}`")
    present = [name for name in expected if name in set(files_in(artifact_uri, storage))]
    if len(present) != 1:
        raise invalid(
            f"Model directory {artifact_uri} is expected to contain exactly one of: [{', '.join(expected)}]"
            + (f" (found {', '.join(present)})" if present else "")
        )
    return present[0]


def fetch(artifact_uri: str, storage: Storage, dest: Path, names: list[str] | None = None) -> Path:
    """The artifact folder on local disk: a local folder as it is; ``gs://`` copied under ``dest`` (``names``
    of its files, or its whole tree, as a SavedModel's ``variables/`` needs)."""
    if not artifact_uri.startswith("gs://"):
        return Path(artifact_uri)
    for name in names if names is not None else storage.list_tree(artifact_uri):
        storage.download(artifact_uri, name, dest)
    return dest
