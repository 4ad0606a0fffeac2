"""Google's Cloud Storage client pointed at a local `hyp storage`, as a user configures it."""

from __future__ import annotations

import os
from typing import Any
from unittest import mock


def storage_client(url: str, project: str = "hyp-local") -> Any:  # google.cloud.storage.Client
    """google-cloud-storage with ``STORAGE_EMULATOR_HOST=url`` and anonymous credentials.

    The client reads the variable when it is built; it is set only for that moment, so the calling
    process's environment stays as it was.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    with mock.patch.dict(os.environ, {"STORAGE_EMULATOR_HOST": url}):
        return storage.Client(project=project, credentials=AnonymousCredentials())
