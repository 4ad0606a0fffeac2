"""Shared test configuration: environment for testcontainers and no cloud probing."""

from __future__ import annotations

import os

# Nothing in the test run may reach a cloud metadata server or a registry.
os.environ.setdefault("GCE_METADATA_HOST", "127.0.0.1:1")
os.environ.setdefault("NO_GCE_CHECK", "True")
# testcontainers on this VM: no Ryuk (its image cannot be pulled), reach containers on 127.0.0.1.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false")

# Fixtures that start real processes (emulator, MLflow server, ...), shared by every test folder.
pytest_plugins = ["tests.fixtures.pubsub", "tests.fixtures.mlflow", "services.testing.fixtures"]
