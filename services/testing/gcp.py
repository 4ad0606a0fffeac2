"""BigQuery and Cloud Storage for tests: Google's clients for a stack's `hyp bigquery` and `hyp storage`,
and the two services as local processes (no Docker) on free ports over a temporary folder.

>>> with LocalGcp() as gcp:
...     gcp.bigquery_client().query("SELECT 1").result()
...     gcp.storage_client().create_bucket("my-bucket")
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from services.testing.bigquery import bigquery_client
from services.testing.hyp import HypProcess
from services.testing.lifecycle import Started
from services.testing.storage import storage_client


class GoogleClients:
    """Google's BigQuery and Cloud Storage clients for services at ``bigquery_url`` and ``storage_url`` serving
    ``project``: shared by the local processes (:class:`LocalGcp`) and the stack in containers (``HypStack``)."""

    project: str

    @property
    def bigquery_url(self) -> str:
        """What BIGQUERY_EMULATOR_HOST would be: ``http://127.0.0.1:PORT``."""
        raise NotImplementedError

    @property
    def storage_url(self) -> str:
        """What STORAGE_EMULATOR_HOST would be: ``http://127.0.0.1:PORT``."""
        raise NotImplementedError

    def bigquery_client(self) -> Any:  # google.cloud.bigquery.Client
        return bigquery_client(self.bigquery_url, self.project)

    def storage_client(self) -> Any:  # google.cloud.storage.Client
        return storage_client(self.storage_url, self.project)


class LocalGcp(GoogleClients, Started):
    """`hyp bigquery` and `hyp storage` as processes on free ports, their data in ``home`` (a temporary folder
    removed at the end when not given). BigQuery's tables live in ``home/warehouse``, as in a stack."""

    def __init__(self, home: Path | None = None, *, project: str = "hyp-local", timeout: float = 60.0) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if home is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hyp-gcp-")
            home = Path(self._tmp.name)
        self.home = home
        self.project, self.timeout = project, timeout
        env = dict(os.environ, HYP_PROJECT=project, HYP_WAREHOUSE_DIR=str(self.home / "warehouse"))
        self.bigquery = HypProcess("bigquery", log_path=self.home / "bigquery.log", env=env)
        storage_dir = str(self.home / "storage")
        self.storage = HypProcess("storage", "--data-dir", storage_dir, log_path=self.home / "storage.log", env=env)

    @property
    def bigquery_url(self) -> str:
        return self.bigquery.url

    @property
    def storage_url(self) -> str:
        return self.storage.url

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    def start(self) -> LocalGcp:
        # both start at once; then each is waited for (bounded)
        self.bigquery.start(wait=False)
        self.storage.start(wait=False)
        self.bigquery.wait_healthy(self.timeout)
        self.storage.wait_healthy(self.timeout)
        return self

    def stop(self) -> None:
        try:
            self.bigquery.stop()
            self.storage.stop()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
