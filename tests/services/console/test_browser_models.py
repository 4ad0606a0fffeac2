"""Model actions in headless Chromium against a real `hyp mlflow` and `hyp orchestrator`: the versions with
their metrics side by side, promote and roll back from the page (checked with MLflow's own client), an
orchestrator run started from the page and followed to its end step by step, a refused run's reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.console.conftest import CHROMIUM, console_process
from tests.services.console.test_browser import assert_clean
from tests.services.console.test_models_actions import MODEL, champion, orchestrator, registry  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.local_only("the console's page"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent: apt-get install -y chromium"),
]


@pytest.fixture(scope="module")
def console(mlflow_server, registry, orchestrator, tmp_path_factory) -> Iterator[str]:  # noqa: F811
    with console_process(
        MLFLOW_TRACKING_URI=mlflow_server.tracking_uri,
        HYP_MODEL_NAME=MODEL,
        HYP_CONSOLE_ORCHESTRATOR_URL=orchestrator,
        HYP_WAREHOUSE_DIR=str(tmp_path_factory.mktemp("warehouse")),
        HYP_CONSOLE_MODELS_REFRESH_S="1",
    ) as url:
        yield url


@pytest.fixture
def page(tab, console):
    return tab


def test_promote_and_roll_back_from_the_page(page, console, registry):  # noqa: F811
    registry.set_registered_model_alias(MODEL, "champion", "2")
    page.goto(console)
    page.wait_for_selector('#versions tr[data-version="3"] button', timeout=15_000)
    headers = page.locator("#versions thead th").all_inner_texts()
    assert "f1" in headers and "precision" in headers  # metrics side by side, one column each
    f1 = headers.index("f1")
    assert page.locator('#versions tr[data-version="3"] td').nth(f1).inner_text() == "0.800"
    page.click('#versions tr[data-version="3"] button')
    page.wait_for_selector("#models-outcome[data-ok='true'] >> text=v2 → v3", timeout=10_000)
    assert champion(registry) == "3"
    page.wait_for_selector("#champion >> text=v3", timeout=10_000)
    page.click("#rollback")
    page.wait_for_selector("#models-outcome[data-ok='true'] >> text=rolled back", timeout=10_000)
    assert champion(registry) == "2"
    page.wait_for_selector("#champion >> text=v2", timeout=10_000)
    assert_clean(page)


def test_an_orchestrator_run_is_followed_step_by_step(page, console):
    page.goto(console)
    page.fill("#run-window", "5")
    page.uncheck("#run-promote")
    page.click("#run-form button[type=submit]")
    page.wait_for_selector("#run-form .outcome[data-ok='true']", timeout=15_000)
    page.wait_for_selector('#run-steps li[data-step="window"]', timeout=30_000)
    page.wait_for_selector("#run-follow:not([data-status='running'])", timeout=60_000)
    assert page.get_attribute("#run-follow", "data-status") == "failed"  # an empty warehouse
    assert "✗ window: failed" in page.inner_text("#run-steps")
    assert_clean(page)
    page.fill("#run-candidates", "no-such-kind")
    page.click("#run-form button[type=submit]")
    page.wait_for_selector("#run-form .outcome[data-ok='false']", timeout=15_000)
    assert "candidates" in page.inner_text("#run-form .outcome")
