"""The whole hyp-local stack through Docker Compose (the plugin's ``hyp_stack`` fixture): its Pub/Sub topics,
the workshop's BigQuery dataset, and the model the stack trained and deployed, scored through
google-cloud-aiplatform (``shop.scoring``)."""

import pytest

from shop.scoring import flag_anomalies

pytestmark = pytest.mark.docker


def test_the_stack_has_its_topics_and_dataset(hyp_stack):
    topics = {t.name for t in hyp_stack.publisher_client().list_topics(project=f"projects/{hyp_stack.project}")}
    assert hyp_stack.topic_path("hyp-pubsub-topic") in topics
    assert "ecommerce_sink" in {d.dataset_id for d in hyp_stack.bigquery_client().list_datasets()}


def test_the_deployed_model_scores_purchases_through_the_vertex_sdk(hyp_stack):
    ordinary = {"value": 35.43, "tax": 4.9, "shipping": 5.99}
    huge = {"value": 250_000.0, "tax": 0.0, "shipping": 0.0}
    flags = flag_anomalies(hyp_stack.vertex_endpoint(), [ordinary, huge])
    assert len(flags) == 2 and flags[1] is True  # 250,000 with no tax is far from every purchase it trained on
