"""Code that builds its clients from the environment, as production code usually does: the opt-in
``hyp_emulator_env`` fixture sets the *_EMULATOR_HOST variables for one test; the others never do."""

import os

from models import Order
from shop.orders import archive_receipt, publish_orders, read_receipt


def test_clients_built_from_the_environment(hyp_emulator_env):
    from google.cloud import pubsub_v1, storage

    project = hyp_emulator_env["GOOGLE_CLOUD_PROJECT"]
    publisher = pubsub_v1.PublisherClient()  # PUBSUB_EMULATOR_HOST: insecure channel, no credentials
    topic = publisher.topic_path(project, "from-env")
    publisher.create_topic(name=topic)
    assert len(publish_orders(publisher, topic, [Order("o-1", "ada", 1.0)])) == 1

    gcs = storage.Client()  # STORAGE_EMULATOR_HOST: anonymous credentials
    gcs.create_bucket("from-env")
    name = archive_receipt(gcs, "from-env", Order("o-2", "ada", 2.0))
    assert read_receipt(gcs, "from-env", name).amount == 2.0


def test_the_other_fixtures_leave_the_environment_alone(hyp_pubsub_emulator, hyp_storage_emulator):
    assert os.environ.get("PUBSUB_EMULATOR_HOST") != hyp_pubsub_emulator.host
    assert os.environ.get("STORAGE_EMULATOR_HOST") != hyp_storage_emulator.url
