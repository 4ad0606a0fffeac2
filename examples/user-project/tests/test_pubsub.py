"""Publishing and pulling orders through the Docker-free Pub/Sub emulator (fixtures of pytest-hyp-local)."""

from models import Order
from shop.orders import publish_orders, pull_orders

ORDERS = [Order("o-1", "ada", 12.5), Order("o-2", "grace", 30.0), Order("o-3", "ada", 7.5)]


def test_published_orders_arrive_on_the_subscription(pubsub_publisher, pubsub_subscriber, pubsub_topic,
                                                     pubsub_subscription):  # fmt: skip
    ids = publish_orders(pubsub_publisher, pubsub_topic, ORDERS)
    assert len(set(ids)) == len(ORDERS)

    got = pull_orders(pubsub_subscriber, pubsub_subscription, want=len(ORDERS))
    assert sorted(got, key=lambda o: o.order_id) == ORDERS


def test_each_test_gets_a_topic_of_its_own(pubsub_publisher, pubsub_topic, hyp_pubsub_emulator):
    topics = [t.name for t in pubsub_publisher.list_topics(project=f"projects/{hyp_pubsub_emulator.project}")]
    assert pubsub_topic in topics
