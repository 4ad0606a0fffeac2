"""HypStack's plan without Docker: which services and ports it publishes, and the names it hands out."""

from __future__ import annotations

import pytest
import yaml

from services.stack import definition as d
from services.testing.stack import HypStack, port_override

pytestmark = pytest.mark.local_only("the compose stack under testcontainers")


class ComposeLoader(yaml.SafeLoader):
    """Reads compose's ``!override`` tag as the plain sequence it replaces with."""


ComposeLoader.add_constructor("!override", lambda loader, node: loader.construct_sequence(node))


def test_a_service_brings_its_dependencies_and_only_their_ports_are_published() -> None:
    stack = HypStack(["detector"])
    assert stack.services == ["detector"]
    assert HypStack._closure(["detector"]) == ["detector", "pubsub"]
    published = yaml.load(port_override(HypStack._closure(["processor"])), Loader=ComposeLoader)["services"]
    assert "pubsub" in published and "endpoint" in published and "console" not in published
    assert published["pubsub"]["ports"] == [f"127.0.0.1::{p}" for p in d.service("pubsub").ports]


def test_unknown_services_are_named() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        HypStack(["pubsub", "nope"])


def test_resource_names_use_the_stack_project() -> None:
    stack = HypStack(["pubsub"], env={"HYP_PROJECT": "p-test"})
    assert stack.topic("hyp-pubsub-topic") == "projects/p-test/topics/hyp-pubsub-topic"
    assert stack.subscription("s") == "projects/p-test/subscriptions/s"
