"""``EXPORT MODEL ds.m OPTIONS(URI = '...')``: a model written as BigQuery ML exports KMEANS, PCA and
AUTOENCODER models, a TensorFlow SavedModel (``saved_model.pb``, ``variables/``, ``assets/``).

The SavedModel's ``serving_default`` signature takes one tensor per feature column, named as the column: float64
for a numeric one (NaN stands for NULL and is imputed as in training), string for a STRING one (one-hot encoded
inside the model over the training vocabulary, as ML.PREDICT does; '' stands for NULL), and answers what the
model's ML.PREDICT answers: KMEANS ``CENTROID_ID``, ``NEAREST_CENTROIDS_ID`` and ``NEAREST_CENTROIDS_DISTANCE``
(nearest first); PCA ``principal_component_1`` ...; AUTOENCODER ``latent_col_1`` ... and ``mean_squared_error``.

Destinations: ``gs://bucket/path`` on ``hyp storage`` (``STORAGE_EMULATOR_HOST``, over Cloud Storage's JSON
API), and, local only, ``file:///abs/path`` or a path inside the export folder (``HYP_BIGQUERY_EXPORT_DIR``,
by default ``<warehouse>/_exports``, as extract jobs): nowhere else on the host. The model is built in a
temporary folder first, so a refused or failed export leaves no files behind (a local destination gets
the folder renamed into place; on ``gs://`` the objects already written are deleted on failure).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

import numpy as np

from services.bigquery.catalog import Catalog
from services.bigquery.extract import export_root
from services.bigquery.ml import store
from services.bigquery.ml.settings import settings
from services.bigquery.sql import invalid_query


def run(catalog: Catalog, ref: store.ModelRef, given: dict[str, Any]) -> None:
    unknown = sorted(set(given) - {"URI"})
    if unknown:
        raise invalid_query(f"Unknown option {unknown[0]} for EXPORT MODEL (only URI is supported).")
    uri = given.get("URI")
    if not isinstance(uri, str) or not uri.strip():
        raise invalid_query("Option URI is required in EXPORT MODEL, e.g. OPTIONS(URI = 'gs://bucket/path').")
    document = store.load(catalog, ref)  # a missing model: "Not found: Model project:dataset.model"
    state = document["state"]
    config = settings()
    root = export_root(catalog, config.export_dir).resolve()
    if uri.startswith("gs://"):
        host = (config.storage_emulator_host or "").strip()
        if not host:
            raise invalid_query(
                f"EXPORT MODEL to {uri}: gs:// is hyp storage, and STORAGE_EMULATOR_HOST is not set for hyp bigquery."
            )
        bucket, prefix = _split_gs(uri)
        gcs = _Gcs(host if "://" in host else f"http://{host}")
        gcs.check_bucket(bucket, uri)
        root.mkdir(parents=True, exist_ok=True)
        work = root / f".export-{uuid.uuid4().hex}"
        try:
            _write_saved_model(state, store.folder(catalog, ref), work)
            gcs.upload_folder(work, bucket, prefix)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    target = _local_target(uri, root)
    if target.exists() and not target.is_dir():
        raise invalid_query(f"EXPORT MODEL: destination {uri} is a file, not a folder.")
    root.mkdir(parents=True, exist_ok=True)
    work = root / f".export-{uuid.uuid4().hex}"
    try:
        _write_saved_model(state, store.folder(catalog, ref), work)
        _move_into(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _split_gs(uri: str) -> tuple[str, str]:
    rest = uri[len("gs://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise invalid_query(f"Invalid URI for EXPORT MODEL: {uri} (expected gs://bucket/path).")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _local_target(uri: str, root: Path) -> Path:
    """``file:///abs`` or a path; relative paths are taken inside ``root``; anything outside it is refused."""
    if "://" in uri:
        parsed = urlparse(uri)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            raise invalid_query(
                f"Invalid URI for EXPORT MODEL: {uri}. hyp bigquery exports to gs:// (hyp storage) or, locally, "
                "to file:// paths inside its export folder."
            )
        path = Path(unquote(parsed.path))
    else:
        path = Path(uri)
    target = (path if path.is_absolute() else root / path).resolve()
    if target != root and root not in target.parents:
        raise invalid_query(
            f"EXPORT MODEL to {uri}: local destinations must be inside the export folder {root} "
            "(HYP_BIGQUERY_EXPORT_DIR)."
        )
    return target


def _move_into(work: Path, target: Path) -> None:
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(work, target)  # the whole SavedModel appears at once
        return
    for source in sorted(p for p in work.rglob("*") if p.is_file()):  # an existing folder: file by file
        dest = target / source.relative_to(work)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, dest)


class _Gcs:
    """Cloud Storage's JSON API at ``host``: just what writing an exported model needs."""

    def __init__(self, host: str) -> None:
        self.host = host.rstrip("/")

    def _client(self) -> Any:
        import httpx

        return httpx.Client(base_url=self.host, timeout=60, trust_env=False)

    def check_bucket(self, bucket: str, uri: str) -> None:
        import httpx

        try:
            with self._client() as http:
                answer = http.get(f"/storage/v1/b/{quote(bucket, safe='')}")
        except httpx.HTTPError as exc:
            raise invalid_query(f"EXPORT MODEL to {uri}: hyp storage does not answer ({exc}).") from None
        if answer.status_code == 404:
            raise invalid_query(f"EXPORT MODEL to {uri}: bucket {bucket} does not exist.")
        if answer.status_code >= 400:
            raise invalid_query(f"EXPORT MODEL to {uri}: hyp storage answered {answer.status_code}.")

    def upload_folder(self, folder: Path, bucket: str, prefix: str) -> None:
        import httpx

        written: list[str] = []
        with self._client() as http:
            try:
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    name = prefix + path.relative_to(folder).as_posix()
                    answer = http.post(
                        f"/upload/storage/v1/b/{quote(bucket, safe='')}/o",
                        params={"uploadType": "media", "name": name},
                        content=path.read_bytes(),
                        headers={"Content-Type": "application/octet-stream"},
                    )
                    answer.raise_for_status()
                    written.append(name)
            except httpx.HTTPError as exc:
                for name in written:  # nothing exported half
                    http.delete(f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}")
                raise invalid_query(f"EXPORT MODEL to gs://{bucket}/{prefix}: writing failed ({exc}).") from None


def _write_saved_model(state: dict[str, Any], model_folder: Path, out: Path) -> None:
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
    except ImportError:
        raise invalid_query(
            "EXPORT MODEL writes a TensorFlow SavedModel: install hyp-local[tf] for hyp bigquery."
        ) from None
    for f in state["features"]:
        if "categories" in f and None in f["categories"] and "" in f["categories"]:
            raise invalid_query(
                f"EXPORT MODEL: STRING feature {f['name']} has both NULL and '' among its training values; the "
                "exported model takes NULL as '' (a string tensor has no NULL), so it could not tell them apart."
            )
    spec = {
        f["name"]: tf.TensorSpec([None], tf.string if "categories" in f else tf.float64, name=f["name"])
        for f in state["features"]
    }
    fill = tf.constant(np.asarray(state["fill"], dtype=np.float64))
    module = tf.Module()

    def features(inputs: dict[str, Any]) -> Any:
        """The encoded matrix ML.PREDICT builds (services/bigquery/ml/encoding.py): a numeric column as is (NaN is
        NULL, imputed), a STRING column one-hot over its vocabulary (an unseen value all zeros; '' is NULL)."""
        blocks = []
        for f in state["features"]:
            value = inputs[f["name"]]
            if "categories" not in f:
                blocks.append(tf.cast(value, tf.float64)[:, None])
                continue
            known = tf.constant([c for c in f["categories"] if c is not None], dtype=tf.string)
            hot = [tf.cast(tf.equal(value[:, None], known[None, :]), tf.float64)]
            if None in f["categories"]:  # NULL is the last category
                hot.append(tf.cast(tf.equal(value, "")[:, None], tf.float64))
            blocks.append(tf.concat(hot, axis=1))
        X = tf.concat(blocks, axis=1)
        return tf.where(tf.math.is_nan(X), fill[None, :], X)

    kind = state.get("model_type", "KMEANS")
    if kind == "KMEANS":
        k = state["kmeans"]
        module.mean = tf.Variable(np.asarray(k["mean_"]), name="mean", trainable=False)
        module.scale = tf.Variable(np.asarray(k["scale_"]), name="scale", trainable=False)
        module.centroids = tf.Variable(np.asarray(k["centroids_"]), name="centroids", trainable=False)
        cosine = k["distance_type"] == "COSINE"

        def serve(inputs: dict[str, Any]) -> dict[str, Any]:
            Z = (features(inputs) - module.mean[None, :]) / module.scale[None, :]
            C = module.centroids
            if cosine:
                norms = tf.norm(Z, axis=1)[:, None] * tf.norm(C, axis=1)[None, :]
                dot = tf.matmul(Z, C, transpose_b=True)
                d = 1.0 - tf.where(norms > 0, dot / tf.where(norms > 0, norms, 1.0), 0.0)
            else:
                d = tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(Z[:, None, :] - C[None, :, :]), axis=2), 0.0))
            order = tf.argsort(d, axis=1, stable=True)
            return {
                "CENTROID_ID": tf.cast(order[:, 0] + 1, tf.int64),
                "NEAREST_CENTROIDS_ID": tf.cast(order + 1, tf.int64),
                "NEAREST_CENTROIDS_DISTANCE": tf.gather(d, order, batch_dims=1),
            }

    elif kind == "PCA":
        p = state["pca"]
        module.mean = tf.Variable(np.asarray(p["mean"]), name="mean", trainable=False)
        module.scale = tf.Variable(np.asarray(p["scale"]), name="scale", trainable=False)
        module.components = tf.Variable(np.asarray(p["components"]), name="components", trainable=False)

        def serve(inputs: dict[str, Any]) -> dict[str, Any]:
            Z = (features(inputs) - module.mean[None, :]) / module.scale[None, :]
            projected = tf.matmul(Z, module.components, transpose_b=True)
            count = len(p["components"])
            return {f"principal_component_{i + 1}": projected[:, i] for i in range(count)}

    elif kind == "AUTOENCODER":
        from services.bigquery.ml.autoencoder import _detector

        a = state["autoencoder"]
        network = _detector(state, model_folder).model
        module.network = network
        module.encoder = tf.keras.Model(network.inputs, network.layers[2].output)
        module.center = tf.Variable(np.asarray(a["center"]), name="center", trainable=False)
        module.scale = tf.Variable(np.asarray(a["scale"]), name="scale", trainable=False)

        def serve(inputs: dict[str, Any]) -> dict[str, Any]:
            scaled = (features(inputs) - module.center[None, :]) / module.scale[None, :]
            Z = tf.cast(tf.clip_by_value(scaled, -50.0, 50.0), tf.float32)  # as the detector's _prep
            latent = module.encoder(Z)
            error = tf.reduce_mean(tf.square(module.network(Z) - Z), axis=1)
            out = {f"latent_col_{i + 1}": tf.cast(latent[:, i], tf.float64) for i in range(latent.shape[1])}
            return out | {"mean_squared_error": tf.cast(error, tf.float64)}

    else:
        raise invalid_query(f"EXPORT MODEL of a {kind} model is not supported by hyp bigquery.")
    function = tf.function(serve, input_signature=[spec])
    module.serve = function
    tf.saved_model.save(module, str(out), signatures={"serving_default": function.get_concrete_function()})
    (out / "assets").mkdir(exist_ok=True)
