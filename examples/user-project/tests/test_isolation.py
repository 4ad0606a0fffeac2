"""hyp-local reaches this environment only as its pytest plugin: `models` is this project's package, and
hyp-local's own top-level packages are not importable here."""

import importlib
from pathlib import Path

import pytest

import models

PROJECT = Path(__file__).resolve().parents[1]


def test_models_is_this_projects_package():
    assert models.OWNER == "shop-orders"
    assert Path(models.__file__).resolve().is_relative_to(PROJECT)


@pytest.mark.parametrize("name", ["services", "loadgen"])
def test_hyp_locals_packages_are_not_here(name):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)
