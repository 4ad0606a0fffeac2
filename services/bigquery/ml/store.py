"""Models of a dataset, kept beside its tables: ``<dataset>/models/<model>/model.json``.

One JSON file a model holds the BigQuery ``Model`` resource (what ``get_model`` answers) and the
trained state (k-means centroids, standardisation, distance medians, training statistics). It is
written to a temporary file and renamed over the old one, so a reader sees the old model or the new
one, never half of either; deleting the dataset with its contents deletes its models.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.bigquery import errors
from services.bigquery.catalog import Catalog
from services.bigquery.names import check_dataset, check_project
from services.common.files import replace_atomically

_MODEL = re.compile(r"[A-Za-z0-9_]{1,1024}")
LOCK = threading.RLock()  # create-or-replace, update and delete decide on what exists: one at a time
CACHED_MODELS = 8  # parsed documents kept for load(shared=True), the most recently used
_cache: OrderedDict[str, tuple[tuple[int, int, int], dict[str, Any]]] = OrderedDict()
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelRef:
    project: str
    dataset: str
    model: str

    def __str__(self) -> str:
        return f"{self.project}:{self.dataset}.{self.model}"


def check_model(model: str) -> str:
    if not _MODEL.fullmatch(model):
        raise errors.invalid(
            f'Invalid model ID "{model}". Model IDs must be alphanumeric (plus underscores) '
            "and must be at most 1024 characters long."
        )
    return model


def folder(catalog: Catalog, ref: ModelRef) -> Path:
    return catalog.root / check_project(ref.project) / check_dataset(ref.dataset) / "models" / check_model(ref.model)


def exists(catalog: Catalog, ref: ModelRef) -> bool:
    catalog.get_dataset(ref.project, ref.dataset)  # an unknown dataset: 404 naming it
    return (folder(catalog, ref) / "model.json").exists()


def load(catalog: Catalog, ref: ModelRef, shared: bool = False) -> dict[str, Any]:
    """The stored document: {"resource": Model resource, "state": trained state}; 404 if absent. With
    ``shared`` the document may be the one an earlier call parsed, when the file is still that one (same inode,
    size and modification time: :func:`save` replaces the file, so a new model is a new inode), and the caller
    must not change it: the ML functions, which read a model per query (a k-means state's 10,001 stored
    quantiles are ~1.5 ms of JSON a query)."""
    catalog.get_dataset(ref.project, ref.dataset)
    path = folder(catalog, ref) / "model.json"
    try:
        with open(path, encoding="utf-8") as fh:
            seen = os.fstat(fh.fileno())
            version = (seen.st_ino, seen.st_size, seen.st_mtime_ns)
            with _CACHE_LOCK:
                cached = _cache.get(str(path)) if shared else None
                if cached is not None and cached[0] == version:
                    _cache.move_to_end(str(path))  # kept as the most recently used
                    return cached[1]
            document: dict[str, Any] = json.loads(fh.read())
    except FileNotFoundError:
        raise errors.not_found(f"Model {ref}") from None
    if shared:
        with _CACHE_LOCK:
            _cache[str(path)] = (version, document)
            _cache.move_to_end(str(path))
            while len(_cache) > CACHED_MODELS:
                _cache.popitem(last=False)
    return document


def save(catalog: Catalog, ref: ModelRef, document: dict[str, Any]) -> None:
    """Under ``LOCK``: the model's document replaced atomically and durably, as the catalog writes its own, but
    encoded in one ``json.dumps`` (the C encoder; ``json.dump`` to a file runs the pure-Python one, ~4x slower
    on a k-means state's 10,001 stored quantiles)."""
    path = folder(catalog, ref) / "model.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, json.dumps(document).encode())
    _forget(path)


def _forget(path: Path) -> None:
    """Drop a cached document (load(shared=True)) of a file this process replaced or deleted: its file identity
    alone could repeat (a freed inode reused within the clock's tick by a document of the same size)."""
    with _CACHE_LOCK:
        _cache.pop(str(path), None)


def delete(catalog: Catalog, ref: ModelRef) -> None:
    with LOCK:
        if not exists(catalog, ref):
            raise errors.not_found(f"Model {ref}")
        shutil.rmtree(folder(catalog, ref))
        _forget(folder(catalog, ref) / "model.json")


def list_models(catalog: Catalog, project: str, dataset: str) -> list[dict[str, Any]]:
    catalog.get_dataset(project, dataset)
    root = catalog.root / check_project(project) / check_dataset(dataset) / "models"
    out = []
    for child in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            out.append(load(catalog, ModelRef(project, dataset, child.name))["resource"])
        except errors.BigQueryError:  # removed while listing
            continue
    return out


def update(catalog: Catalog, ref: ModelRef, patch: dict[str, Any]) -> dict[str, Any]:
    """models.patch: labels, description, friendlyName, expirationTime (others: 400 naming them)."""
    allowed = {"labels", "description", "friendlyName", "expirationTime"}
    ignored = {"modelReference", "etag", "kind", "id"}
    unknown = sorted(set(patch) - allowed - ignored)
    if unknown:
        raise errors.invalid(f"Model field {unknown[0]} cannot be updated (only {', '.join(sorted(allowed))}).")
    with LOCK:
        document = load(catalog, ref)
        resource = document["resource"]
        for key in allowed & set(patch):
            value = patch[key]
            if key == "labels" and isinstance(value, dict):
                labels = {**resource.get("labels", {}), **value}
                resource["labels"] = {k: v for k, v in labels.items() if v is not None}
            elif value is None:
                resource.pop(key, None)
            else:
                resource[key] = str(value) if key == "expirationTime" else value
        now = str(int(time.time() * 1000))
        resource["lastModifiedTime"] = resource["etag"] = now
        save(catalog, ref, document)
    return dict(resource)
