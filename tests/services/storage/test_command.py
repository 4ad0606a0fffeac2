"""`hyp storage` as a command: settings from the environment, flags over them, one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.testing.hyp import HypProcess, run_hyp
from services.testing.storage import storage_client
from tests.services.storage.conftest import unique_bucket

pytestmark = [pytest.mark.local_only("the `hyp storage` command line and its data folder setting")]


def test_bad_port_is_one_line_and_exit_2() -> None:
    result = run_hyp("storage", "--port", "70000", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("hyp storage: --port:") and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.integration
def test_data_dir_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "HYP_STORAGE_DATA_DIR": str(tmp_path / "from-env")}
    with HypProcess("storage", log_path=tmp_path / "log", env=env).start(timeout=60) as server:
        name = storage_client(server.url).create_bucket(unique_bucket()).name
    assert (tmp_path / "from-env" / "buckets" / name / "bucket.json").exists()
