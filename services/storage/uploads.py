"""Resumable upload sessions (cloud.google.com/storage/docs/performing-resumable-uploads), kept on disk so a
session survives a restart: ``uploads/<id>.json`` (the object's metadata and preconditions) and
``uploads/<id>.part`` (the bytes received so far). Until the last byte arrives nothing is visible in
the bucket; then the part file is committed through :meth:`Store.write_object`."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from services.storage import disk, errors, resources
from services.storage.store import Preconditions, Store, Stored


class Sessions:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.folder = store.root / "uploads"

    def _paths(self, upload_id: str) -> tuple[Path, Path]:
        if not upload_id.isalnum():
            raise errors.ApiError(404, "notFound", "No such upload session.")
        return self.folder / f"{upload_id}.json", self.folder / f"{upload_id}.part"

    def start(self, bucket: str, name: str, metadata: dict[str, Any], pre: Preconditions) -> str:
        self.store.get_bucket(bucket)
        upload_id = uuid.uuid4().hex
        session, part = self._paths(upload_id)
        part.touch()
        disk.write_json(
            self.store.tmp, session, {"bucket": bucket, "name": name, "metadata": metadata, "pre": asdict(pre)}
        )
        return upload_id

    def received(self, upload_id: str) -> int:
        session, part = self._paths(upload_id)
        if not session.exists():
            raise errors.ApiError(404, "notFound", "No such upload session.")
        return part.stat().st_size

    def part(self, upload_id: str) -> Path:
        """The file holding the bytes received so far (the route appends to it as a chunk streams in)."""
        self.received(upload_id)
        return self._paths(upload_id)[1]

    def settle(self, upload_id: str, total: int | None) -> Stored | int:
        """After a chunk: the object once ``total`` bytes are there, else how many bytes the session holds."""
        session, part = self._paths(upload_id)
        size = self.received(upload_id)
        if total is None or size < total:
            return size
        if size > total:
            raise errors.invalid(f"Invalid request. {size} bytes received, more than the declared {total}.")
        return self.finish(session, part)

    def finish(self, session: Path, part: Path) -> Stored:
        info = disk.read_json(session)
        hasher = resources.Hasher()
        with open(part, "rb") as f:
            while chunk := f.read(1 << 20):
                hasher.update(chunk)
        metadata = info["metadata"]
        try:
            return self.store.write_object(
                info["bucket"],
                info["name"],
                part,
                hasher,
                metadata,
                Preconditions(**info["pre"]),
                expected_md5=metadata.get("md5Hash"),
                expected_crc32c=metadata.get("crc32c"),
            )
        finally:
            session.unlink(missing_ok=True)

    def cancel(self, upload_id: str) -> None:
        session, part = self._paths(upload_id)
        self.received(upload_id)
        session.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
