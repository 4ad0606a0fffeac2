"""hyp-local's images under testcontainers: the plugin's HypPubSubContainer, testcontainers' own
PubSubContainer with our image swapped in for Google's (our image accepts its gcloud command line), and the
plugin's BigQuery and Cloud Storage containers (hyp-local's app image)."""

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


def test_hyp_bigquery_container(hyp_bigquery_container):
    from shop.orders import create_orders_table, load_orders, revenue_by_customer

    client = hyp_bigquery_container.get_client()
    table_id = create_orders_table(client, "in_container")
    load_orders(client, table_id, [Order("o-1", "ada", 4.0)])
    assert revenue_by_customer(client, table_id) == {"ada": 4.0}


def test_hyp_storage_container(hyp_storage_container):
    from shop.orders import archive_receipt, read_receipt

    client = hyp_storage_container.get_client()
    client.create_bucket("in-container")
    name = archive_receipt(client, "in-container", Order("o-2", "ada", 5.0))
    assert read_receipt(client, "in-container", name).amount == 5.0


def test_bigquery_emulator_container_convention_with_our_image():
    """testcontainers-java's BigQueryEmulatorContainer with hyp-local's bigquery image instead of goccy's: the
    same command line (`--project test-project`, here with goccy's `--dataset`), ports 9050 and 9060, and the
    client at http://HOST:PORT with anonymous credentials."""
    from hyp_local_pytest.containers import docker_missing

    if reason := docker_missing():
        pytest.skip(reason)
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    from shop.orders import create_orders_table, load_orders, revenue_by_customer

    container = DockerContainer("hyp-local/bigquery:0.1.0").with_exposed_ports(9050, 9060)
    with container.with_command("--project test-project --dataset dataset1") as emulator:
        wait_for_logs(emulator, "gRPC server listening", timeout=60)  # goccy's start-up lines, printed by ours
        url = f"http://{emulator.get_container_host_ip()}:{emulator.get_exposed_port(9050)}"
        client = bigquery.Client("test-project", client_options=ClientOptions(api_endpoint=url),
                                 credentials=AnonymousCredentials())  # fmt: skip
        assert "dataset1" in {d.dataset_id for d in client.list_datasets()}
        table_id = create_orders_table(client, "swapped")
        load_orders(client, table_id, [Order("o-3", "bob", 2.5)])
        assert revenue_by_customer(client, table_id) == {"bob": 2.5}
