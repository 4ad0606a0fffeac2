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


def test_the_stacks_bq_direct_is_a_bigquery_subscription_also_over_an_older_pull_one():
    """The stack's file makes hyp_subscription_bq_direct write pubsub_direct; a data dir from before, where it was
    a pull subscription, gets the BigQuery config on the next start and its delivery loop starts."""
    from services.pubsub.settings import DEFAULT_TOPOLOGY

    broker = Broker()
    started: list[str] = []
    broker.on_bigquery_subscription = lambda sub: started.append(sub.name)
    old = {
        "topics": [{"name": "hyp-pubsub-topic"}],
        "subscriptions": [{"name": "hyp_subscription_bq_direct", "topic": "hyp-pubsub-topic"}],
    }
    topology.apply(broker, old, "proj-1")
    assert not broker.subs["projects/proj-1/subscriptions/hyp_subscription_bq_direct"].pb.bigquery_config.table
    topology.apply(broker, topology.load(DEFAULT_TOPOLOGY, {"HYP_PROJECT": "proj-1"}), "unused")
    pb = broker.subs["projects/proj-1/subscriptions/hyp_subscription_bq_direct"].pb
    assert pb.bigquery_config.table == "proj-1.ecommerce_sink.pubsub_direct"
    assert pb.bigquery_config.write_metadata and pb.bigquery_config.state == 1
    assert pb.message_retention_duration.seconds == 600
    assert started == ["projects/proj-1/subscriptions/hyp_subscription_bq_direct"]
