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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.bigquery import errors
from services.bigquery.catalog import Catalog
from services.bigquery.names import check_dataset, check_project

_MODEL = re.compile(r"[A-Za-z0-9_]{1,1024}")
LOCK = threading.RLock()  # create-or-replace, update and delete decide on what exists: one at a time


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


def load(catalog: Catalog, ref: ModelRef) -> dict[str, Any]:
    """The stored document: {"resource": Model resource, "state": trained state}; 404 if absent."""
    catalog.get_dataset(ref.project, ref.dataset)
    try:
        document: dict[str, Any] = json.loads((folder(catalog, ref) / "model.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise errors.not_found(f"Model {ref}") from None
    return document


def save(catalog: Catalog, ref: ModelRef, document: dict[str, Any]) -> None:
    """Under ``LOCK``: the model's document replaced atomically and durably, as the catalog writes its own, but
    encoded in one ``json.dumps`` (the C encoder; ``json.dump`` to a file runs the pure-Python one, ~4x slower
    on a k-means state's 10,001 stored quantiles)."""
    path = folder(catalog, ref) / "model.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(document))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def delete(catalog: Catalog, ref: ModelRef) -> None:
    with LOCK:
        if not exists(catalog, ref):
            raise errors.not_found(f"Model {ref}")
        shutil.rmtree(folder(catalog, ref))


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
