"""What the console's tests share: settings whose sources are given (every other one points at a dead port,
never at a default port of another stack), for an app in process or a console process; Debian's Chromium
through Playwright (never ``playwright install``) and a fresh page that records console errors and requested
URLs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from services.common.processes import free_port, stop_group, wait_healthy

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--no-first-run",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[3]


def dead_sources() -> dict[str, str]:
    """Every source of the console at one dead address (a free port nobody listens on), its own subscriptions off."""
    dead = f"http://127.0.0.1:{free_port()}"
    return {
        "HYP_CONSOLE_PUBSUB_URL": dead,
        "HYP_CONSOLE_BIGQUERY_URL": dead,
        "HYP_CONSOLE_DETECTOR_METRICS_URL": dead + "/metrics",
        "HYP_CONSOLE_ENDPOINT_URL": dead,
        "HYP_CONSOLE_PROCESSOR_URL": dead,
        "HYP_CONSOLE_ORCHESTRATOR_URL": dead,
        "MLFLOW_TRACKING_URI": dead,
        "HYP_CONSOLE_SUBSCRIBE": "false",
    }


def console_settings(**given: Any) -> Any:  # ConsoleSettings (imported on use, as the app is)
    """The console's settings: ``given`` (by variable name) over dead addresses for every other source."""
    from services.console.settings import ConsoleSettings

    return ConsoleSettings(**{**dead_sources(), **given})


@contextmanager
def console_process(**env: str) -> Iterator[str]:
    """`hyp console` on a free port with ``env`` over dead addresses for every source; yields its URL."""
    defaults = {**dead_sources(), "HYP_CONSOLE_REFRESH_S": "0.5", "HYP_CONSOLE_PROBE_TIMEOUT_S": "0.5"}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.console", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **defaults, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/health", 30, process=proc, what="hyp console")
        yield url
    finally:
        stop_group(proc)


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def tab(chromium):
    """A blank page in a fresh context; ``tab.errors`` and ``tab.requests`` collect what it logged and fetched."""
    context = chromium.new_context(viewport={"width": 1600, "height": 1300})
    pg = context.new_page()
    pg.errors, pg.requests = [], []
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("request", lambda r: pg.requests.append(r.url))
    yield pg
    context.close()
