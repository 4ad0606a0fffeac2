"""The one registry of model kinds (models.detectors.KINDS) is what every list of kinds reads."""

from __future__ import annotations

import pytest

from models import detectors, pyfunc
from models.errors import ModelInputError
from services.labs import registry as labs_registry


@pytest.mark.parametrize("name", detectors.MODEL_KINDS)
def test_each_kind_builds_its_own_detector(name: str) -> None:
    kind = detectors.get(name)
    detector = detectors.build(name, {"features": "base"})
    assert kind.name == detector.kind == name and detector.feature_set == "base"
    assert isinstance(detector, detectors.Detector)
    assert type(detector).__module__.startswith("models.detectors.")  # one detector per module of the package
    for key, choices in kind.search_space.items():
        assert key and len(choices) >= 2


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ModelInputError, match=r"unknown model 'nope' \(models: kmeans, iforest, .*, envelope\)"):
        detectors.build("nope")


def test_streaming_fitness_as_documented() -> None:
    batch_only = {k for k, v in detectors.KINDS.items() if not v.streaming}
    assert batch_only == {"ecod", "copod", "lof"}


def test_labs_read_their_kinds_from_the_registry() -> None:
    assert labs_registry.KMEANS == ("kmeans",)
    assert set(labs_registry.CUSTOM) == {"iforest", "hbos", "lof", "ecod", "copod", "autoencoder"}
    assert set(detectors.MODEL_KINDS) == {*labs_registry.KMEANS, *labs_registry.CUSTOM, "envelope"}


def test_pip_requirements_follow_the_kind() -> None:
    def names(kind: str) -> set[str]:
        return {pin.split("==")[0] for pin in pyfunc.pip_requirements(kind)}

    assert "tensorflow" in names("autoencoder") and "pyod" not in names("autoencoder")
    assert "pyod" in names("iforest") and "tensorflow" not in names("iforest")
    assert not {"pyod", "tensorflow"} & names("kmeans")
