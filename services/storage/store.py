"""Buckets and objects on disk: the behaviour behind the API (the routes validate and translate).

Layout under the data folder::

    buckets/<bucket>/bucket.json            the bucket's metadata
    buckets/<bucket>/meta/<key>.json        one live object's metadata (key: sha256 of its name)
    buckets/<bucket>/data/<key>.<gen>       its bytes, one file per generation
    buckets/<bucket>/notifications.json     its Pub/Sub notification configurations (notifications.py)
    uploads/<id>.json, uploads/<id>.part    unfinished resumable uploads (services/storage/uploads.py)
    tmp/                                    temporary files, emptied at start

An object is written as data file first, metadata second; the metadata's rename is the commit point.
A process killed before it leaves at most an unreferenced data file or a temporary file, which the
next start removes: no partial object is ever visible. One process owns the folder; it keeps an index
of the metadata in memory and changes it under a lock.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from services.storage import disk, errors, resources
from services.storage.naming import check_bucket, check_object

Stored = dict[str, Any]
# (event type, the object's metadata, extra message attributes): called under the store's lock after a commit
Listener = Callable[[str, Stored, dict[str, str]], None]


@dataclass(frozen=True)
class Preconditions:
    """``ifGenerationMatch`` & co. (cloud.google.com/storage/docs/request-preconditions); 0 as
    ``if_generation_match`` means "only if there is no live object"."""

    if_generation_match: int | None = None
    if_generation_not_match: int | None = None
    if_metageneration_match: int | None = None
    if_metageneration_not_match: int | None = None

    def check(self, current: Stored | None) -> None:
        """412 when a ``...Match`` does not hold; else 304 Not Modified when a ``...NotMatch`` does not hold
        (the caller already has that generation)."""
        gen = current["generation"] if current else 0
        meta = current["metageneration"] if current else None
        if (self.if_generation_match is not None and self.if_generation_match != gen) or (
            self.if_metageneration_match is not None and self.if_metageneration_match != meta
        ):
            raise errors.precondition_failed()
        if (self.if_generation_not_match is not None and self.if_generation_not_match == gen) or (
            self.if_metageneration_not_match is not None
            and meta is not None
            and self.if_metageneration_not_match == meta
        ):
            raise errors.not_modified()


NONE = Preconditions()


def key(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


class Store:
    def __init__(self, root: Path, default_location: str = "US", project_number: str = "0") -> None:
        self.root = root
        self.default_location = default_location
        self.project_number = project_number
        self.lock = threading.RLock()
        self.buckets: dict[str, Stored] = {}
        self.objects: dict[str, dict[str, Stored]] = {}
        self.notifications: dict[str, list[Stored]] = {}
        self.listener: Listener | None = None
        self._last_generation = 0

    # --- folders
    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def bucket_dir(self, bucket: str) -> Path:
        return self.root / "buckets" / bucket

    def meta_path(self, bucket: str, name: str) -> Path:
        return self.bucket_dir(bucket) / "meta" / f"{key(name)}.json"

    def data_path(self, stored: Stored) -> Path:
        return self.bucket_dir(stored["bucket"]) / "data" / f"{key(stored['name'])}.{stored['generation']}"

    def open(self) -> Store:
        """Create the folders, drop leftovers of a killed process, load the index."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        for sub in ("tmp", "buckets", "uploads"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for folder in sorted((self.root / "buckets").iterdir()):
            manifest = folder / "bucket.json"
            if not manifest.exists():  # killed between mkdir and the manifest's commit
                shutil.rmtree(folder, ignore_errors=True)
                continue
            self.buckets[folder.name] = disk.read_json(manifest)
            configs = folder / "notifications.json"
            self.notifications[folder.name] = disk.read_json(configs) if configs.exists() else []
            self.objects[folder.name] = live = {}
            for meta in (folder / "meta").glob("*.json"):
                stored = disk.read_json(meta)
                live[stored["name"]] = stored
                self._last_generation = max(self._last_generation, stored["generation"])
            wanted = {self.data_path(s).name for s in live.values()}
            for data in (folder / "data").glob("*"):
                if data.name not in wanted:  # written, never committed (or replaced, not yet removed)
                    data.unlink(missing_ok=True)
        return self

    def next_generation(self) -> int:
        with self.lock:
            self._last_generation = max(self._last_generation + 1, time.time_ns() // 1000)
            return self._last_generation

    # --- buckets
    def create_bucket(self, body: dict[str, Any]) -> Stored:
        name = check_bucket(body.get("name", ""))
        labels = body.get("labels") or {}
        if not isinstance(labels, dict):
            raise errors.invalid("Invalid argument: labels must be an object")
        with self.lock:
            if name in self.buckets:
                raise errors.conflict(
                    "Your previous request to create the named bucket succeeded and you already own it."
                )
            created = resources.now()
            stored: Stored = {
                "name": name,
                "projectNumber": self.project_number,
                "location": str(body.get("location") or self.default_location).upper(),
                "locationType": "region" if body.get("location") else "multi-region",
                "storageClass": body.get("storageClass") or "STANDARD",
                "labels": {str(k): str(v) for k, v in labels.items()},
                "versioning": {"enabled": False},
                "timeCreated": created,
                "updated": created,
                "metageneration": 1,
            }
            (self.bucket_dir(name) / "meta").mkdir(parents=True, exist_ok=True)
            (self.bucket_dir(name) / "data").mkdir(exist_ok=True)
            disk.write_json(self.tmp, self.bucket_dir(name) / "bucket.json", stored)
            self.buckets[name] = stored
            self.objects[name] = {}
            self.notifications[name] = []
            return stored

    def get_bucket(self, name: str) -> Stored:
        stored = self.buckets.get(name)
        if stored is None:
            raise errors.no_bucket(name)
        return stored

    def list_buckets(self, prefix: str = "", max_results: int = 1000, page_token: str = "") -> tuple[list[Stored], str]:
        names = sorted(n for n in self.buckets if n.startswith(prefix) and n > page_token)
        page = names[:max_results]
        more = page[-1] if len(names) > len(page) else ""
        return [self.buckets[n] for n in page], more

    def patch_bucket(
        self, name: str, body: dict[str, Any], pre: Preconditions = NONE, *, replace: bool = False
    ) -> Stored:
        """Patch (``labels``: a null value removes one) or, with ``replace`` (``PUT``: update), set the labels
        to exactly those sent."""
        with self.lock:
            stored = dict(self.get_bucket(name))
            if pre.if_metageneration_match is not None and pre.if_metageneration_match != stored["metageneration"]:
                raise errors.precondition_failed()
            if replace:
                stored["labels"] = {}
            if "labels" in body:
                if not isinstance(body["labels"] or {}, dict):
                    raise errors.invalid("Invalid argument: labels must be an object")
                labels = dict(stored.get("labels") or {})
                for k, v in (body["labels"] or {}).items():
                    if v is None:
                        labels.pop(k, None)
                    else:
                        labels[str(k)] = str(v)
                stored["labels"] = labels
            for field in ("storageClass", "versioning"):
                if field in body and body[field] is not None:
                    stored[field] = body[field]
            stored["metageneration"] += 1
            stored["updated"] = resources.now()
            disk.write_json(self.tmp, self.bucket_dir(name) / "bucket.json", stored)
            self.buckets[name] = stored
            return stored

    def delete_bucket(self, name: str) -> None:
        with self.lock:
            self.get_bucket(name)
            if self.objects[name]:
                raise errors.conflict("The bucket you tried to delete is not empty.")
            # the manifest goes first: a kill after it leaves a folder the next start removes
            (self.bucket_dir(name) / "bucket.json").unlink()
            disk.fsync_dir(self.bucket_dir(name))
            shutil.rmtree(self.bucket_dir(name), ignore_errors=True)
            del self.buckets[name], self.objects[name], self.notifications[name]

    # --- notification configurations
    def add_notification(self, bucket: str, make: Callable[[list[Stored]], Stored]) -> Stored:
        """Store the configuration ``make`` builds from the bucket's current ones (it raises on bad input)."""
        with self.lock:
            self.get_bucket(bucket)
            config = make(self.notifications[bucket])
            configs = [*self.notifications[bucket], config]
            disk.write_json(self.tmp, self.bucket_dir(bucket) / "notifications.json", configs)
            self.notifications[bucket] = configs
            return config

    def get_notification(self, bucket: str, config_id: str) -> Stored:
        self.get_bucket(bucket)
        for config in self.notifications[bucket]:
            if config["id"] == config_id:
                return config
        raise errors.ApiError(404, "notFound", f"No such notification configuration: {bucket}/{config_id}")

    def delete_notification(self, bucket: str, config_id: str) -> None:
        with self.lock:
            config = self.get_notification(bucket, config_id)
            configs = [c for c in self.notifications[bucket] if c is not config]
            disk.write_json(self.tmp, self.bucket_dir(bucket) / "notifications.json", configs)
            self.notifications[bucket] = configs

    def _emit(self, event: str, stored: Stored, extra: dict[str, str] | None = None) -> None:
        if self.listener is not None and self.notifications.get(stored["bucket"]):
            self.listener(event, stored, extra or {})

    # --- objects
    def current(self, bucket: str, name: str) -> Stored | None:
        self.get_bucket(bucket)
        return self.objects[bucket].get(name)

    def get_object(self, bucket: str, name: str, generation: int | None = None, pre: Preconditions = NONE) -> Stored:
        stored = self.current(bucket, name)
        if stored is None or (generation is not None and stored["generation"] != generation):
            raise errors.no_object(bucket, name, generation)
        pre.check(stored)
        return stored

    def open_object(
        self, bucket: str, name: str, generation: int | None = None, pre: Preconditions = NONE
    ) -> tuple[Stored, BinaryIO]:
        """The object's metadata and its bytes opened for reading, taken together under the lock: a write that
        replaces it afterwards does not disturb the reader (the old file stays readable until closed)."""
        with self.lock:
            stored = self.get_object(bucket, name, generation, pre)
            return stored, open(self.data_path(stored), "rb")  # the caller closes it

    def write_object(
        self,
        bucket: str,
        name: str,
        tmp: Path,
        hasher: resources.Hasher,
        metadata: dict[str, Any],
        pre: Preconditions = NONE,
        *,
        expected_md5: str | None = None,
        expected_crc32c: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Stored:
        """Commit the fsynced temporary file ``tmp`` (its hashes in ``hasher``) as the new live generation
        of ``bucket/name``; the temporary file is gone afterwards, committed or not."""
        try:
            check_object(name)
            if expected_md5 and expected_md5 != hasher.md5_b64:
                raise errors.invalid(
                    f'Provided MD5 hash "{expected_md5}" doesn\'t match calculated MD5 hash "{hasher.md5_b64}".'
                )
            if expected_crc32c and expected_crc32c != hasher.crc32c_b64:
                raise errors.invalid(
                    f'Provided CRC32C "{expected_crc32c}" doesn\'t match calculated CRC32C "{hasher.crc32c_b64}".'
                )
            with self.lock:
                old = self.current(bucket, name)
                pre.check(old)
                created = resources.now()
                stored: Stored = {
                    "contentType": "application/octet-stream",
                    **resources.writable(metadata),
                    **(extra or {}),
                    "name": name,
                    "bucket": bucket,
                    "generation": self.next_generation(),
                    "metageneration": 1,
                    "size": hasher.size,
                    "md5Hash": hasher.md5_b64,
                    "crc32c": hasher.crc32c_b64,
                    "storageClass": self.buckets[bucket].get("storageClass", "STANDARD"),
                    "timeCreated": created,
                    "updated": created,
                    "timeStorageClassUpdated": created,
                }
                disk.commit(tmp, self.data_path(stored))
                try:
                    disk.write_json(self.tmp, self.meta_path(bucket, name), stored)  # the commit point
                except BaseException:  # a full disk: the bytes of a generation that never was go too
                    self.data_path(stored).unlink(missing_ok=True)
                    raise
                self.objects[bucket][name] = stored
                if old is not None:
                    self.data_path(old).unlink(missing_ok=True)
                    self._emit("OBJECT_DELETE", old, {"overwrittenByGeneration": str(stored["generation"])})
                    self._emit("OBJECT_FINALIZE", stored, {"overwroteGeneration": str(old["generation"])})
                else:
                    self._emit("OBJECT_FINALIZE", stored)
                return stored
        finally:
            tmp.unlink(missing_ok=True)

    def write_bytes(
        self, bucket: str, name: str, data: bytes, metadata: dict[str, Any], pre: Preconditions = NONE, **checks: Any
    ) -> Stored:
        tmp, hasher = self.spool([data])
        return self.write_object(bucket, name, tmp, hasher, metadata, pre, **checks)

    def spool(self, chunks: Any) -> tuple[Path, resources.Hasher]:
        """Write ``chunks`` (bytes) to a new fsynced temporary file; its path and hashes."""
        hasher = resources.Hasher()
        return disk.spool(self.tmp, chunks, hasher.update), hasher

    def patch_object(self, bucket: str, name: str, body: dict[str, Any], pre: Preconditions = NONE) -> Stored:
        with self.lock:
            stored = dict(self.get_object(bucket, name, None, pre))
            for field, value in body.items():
                if field not in resources.WRITABLE:
                    continue
                if field == "metadata":
                    merged = dict(stored.get("metadata") or {})
                    for k, v in (value or {}).items():
                        if v is None:
                            merged.pop(k, None)
                        else:
                            merged[k] = str(v)
                    stored["metadata"] = merged
                elif value is None:
                    stored.pop(field, None)
                else:
                    stored[field] = value
            stored["metageneration"] += 1
            stored["updated"] = resources.now()
            disk.write_json(self.tmp, self.meta_path(bucket, name), stored)
            self.objects[bucket][name] = stored
            self._emit("OBJECT_METADATA_UPDATE", stored)
            return stored

    def delete_object(self, bucket: str, name: str, generation: int | None = None, pre: Preconditions = NONE) -> None:
        with self.lock:
            stored = self.get_object(bucket, name, generation, pre)
            self.meta_path(bucket, name).unlink()  # the commit point
            disk.fsync_dir(self.meta_path(bucket, name).parent)
            self.data_path(stored).unlink(missing_ok=True)
            del self.objects[bucket][name]
            self._emit("OBJECT_DELETE", stored)

    def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        max_results: int = 1000,
        page_token: str = "",
        start_offset: str = "",
        end_offset: str = "",
        include_trailing_delimiter: bool = False,
    ) -> tuple[list[Stored], list[str], str]:
        """One page: (objects, prefixes, next page token or ""). Objects and prefixes both count against
        ``max_results``; the token is the last name or prefix returned."""
        self.get_bucket(bucket)
        names = sorted(
            n
            for n in self.objects[bucket]
            if n.startswith(prefix) and n >= start_offset and (not end_offset or n < end_offset)
        )
        items: list[Stored] = []
        prefixes: list[str] = []
        last = ""
        for n in names:
            if page_token and (
                n <= page_token or (page_token.endswith(delimiter or "\0") and n.startswith(page_token))
            ):
                continue
            rest = n[len(prefix) :]
            if delimiter and delimiter in rest:
                found = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if prefixes and prefixes[-1] == found:
                    if include_trailing_delimiter and n == found:
                        items.append(self.objects[bucket][n])
                    continue
                if len(items) + len(prefixes) >= max_results:
                    return items, prefixes, last
                prefixes.append(found)
                last = found
                if include_trailing_delimiter and n == found:
                    items.append(self.objects[bucket][n])
                continue
            if len(items) + len(prefixes) >= max_results:
                return items, prefixes, last
            items.append(self.objects[bucket][n])
            last = n
        return items, prefixes, ""
