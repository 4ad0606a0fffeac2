"""hyp-local's Pub/Sub image under testcontainers: the plugin's HypPubSubContainer, and testcontainers' own
PubSubContainer with our image swapped in for Google's (our image accepts its gcloud command line)."""

import pytest

from models import Order
from shop.orders import publish_orders, pull_orders

pytestmark = pytest.mark.docker
IMAGE = "hyp-local/pubsub:0.1.0"


def round_trip(publisher, subscriber, project):
    topic, sub = f"projects/{project}/topics/orders", f"projects/{project}/subscriptions/orders"
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=sub, topic=topic)
    publish_orders(publisher, topic, [Order("o-1", "ada", 1.0)])
    return pull_orders(subscriber, sub, want=1)


def test_hyp_pubsub_container(hyp_pubsub_container):
    got = round_trip(hyp_pubsub_container.get_publisher_client(), hyp_pubsub_container.get_subscriber_client(),
                     hyp_pubsub_container.project)  # fmt: skip
    assert got == [Order("o-1", "ada", 1.0)]


def test_pubsub_container_with_our_image():
    from hyp_local_pytest.containers import docker_missing

    if reason := docker_missing():
        pytest.skip(reason)
    from testcontainers.community.google import PubSubContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    with PubSubContainer(image=IMAGE, project="shop-test") as pubsub:
        wait_for_logs(pubsub, "Server started", timeout=30)  # the line Google's emulator prints, printed by ours too
        got = round_trip(pubsub.get_publisher_client(), pubsub.get_subscriber_client(), "shop-test")
    assert got == [Order("o-1", "ada", 1.0)]
