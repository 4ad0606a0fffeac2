"""The topology file: short ids become full resource names under the file's project (a real Broker, no server)."""

from __future__ import annotations

import pytest

from services.pubsub import topology
from services.pubsub.broker import Broker


def test_short_ids_are_completed_with_the_files_project_and_full_names_are_kept():
    doc = {
        "project": "p1",
        "topics": [{"name": "events"}, {"name": "dead-letters"}, {"name": "projects/other/topics/shared"}],
        "subscriptions": [
            {"name": "pull-sub", "topic": "events", "deadLetterPolicy": {"deadLetterTopic": "dead-letters"}},
            {"name": "projects/other/subscriptions/sub-two", "topic": "projects/other/topics/shared"},
        ],
    }
    broker = Broker()
    topology.apply(broker, doc, "unused-default")
    assert sorted(broker.topics) == [
        "projects/other/topics/shared",
        "projects/p1/topics/dead-letters",
        "projects/p1/topics/events",
    ]
    assert sorted(broker.subs) == ["projects/other/subscriptions/sub-two", "projects/p1/subscriptions/pull-sub"]
    sub = broker.subs["projects/p1/subscriptions/pull-sub"].pb
    assert sub.topic == "projects/p1/topics/events"
    assert sub.dead_letter_policy.dead_letter_topic == "projects/p1/topics/dead-letters"


def test_the_default_project_applies_when_the_file_names_none_and_bad_entries_are_named():
    broker = Broker()
    topology.apply(broker, {"topics": [{"name": "topic-t"}]}, "hyp-local")
    assert list(broker.topics) == ["projects/hyp-local/topics/topic-t"]
    with pytest.raises(
        topology.TopologyError, match="subscription projects/hyp-local/subscriptions/sub-s needs a topic"
    ):
        topology.apply(broker, {"subscriptions": [{"name": "sub-s"}]}, "hyp-local")
    with pytest.raises(topology.TopologyError, match="topics must be a list"):
        topology.apply(broker, {"topics": {"name": "topic-t"}}, "hyp-local")
