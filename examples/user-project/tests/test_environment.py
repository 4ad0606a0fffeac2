"""Code that builds its clients from the environment, as production code usually does: the opt-in
``*_emulator_env`` fixtures set the *_EMULATOR_HOST variables for one test (``hyp_emulator_env``: all three);
no other fixture does."""

import os

from models import Order
from shop import orders


def test_clients_built_from_the_environment(hyp_emulator_env):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery, pubsub_v1, storage

    project = hyp_emulator_env["GOOGLE_CLOUD_PROJECT"]
    publisher = pubsub_v1.PublisherClient()  # PUBSUB_EMULATOR_HOST: insecure channel, no credentials
    topic = publisher.topic_path(project, "from-env")
    publisher.create_topic(name=topic)
    assert len(orders.publish_orders(publisher, topic, [Order("o-1", "ada", 1.0)])) == 1

    gcs = storage.Client()  # STORAGE_EMULATOR_HOST: anonymous credentials
    gcs.create_bucket("from-env")
    name = orders.archive_receipt(gcs, "from-env", Order("o-2", "ada", 2.0))
    assert orders.read_receipt(gcs, "from-env", name).amount == 2.0

    bq = bigquery.Client(credentials=AnonymousCredentials())  # BIGQUERY_EMULATOR_HOST: the API endpoint
    table_id = orders.create_orders_table(bq, "from_env")
    orders.load_orders(bq, table_id, [Order("o-3", "ada", 3.0)])
    assert orders.revenue_by_customer(bq, table_id) == {"ada": 3.0}


def test_one_service_from_the_environment(pubsub_emulator_env):
    from google.cloud import pubsub_v1

    assert set(pubsub_emulator_env) == {"PUBSUB_EMULATOR_HOST", "PUBSUB_PROJECT_ID"}
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(pubsub_emulator_env["PUBSUB_PROJECT_ID"], "one-service")
    assert publisher.create_topic(name=topic).name == topic


def test_the_other_fixtures_leave_the_environment_alone(hyp_pubsub_emulator, hyp_storage_emulator):
    assert os.environ.get("PUBSUB_EMULATOR_HOST") != hyp_pubsub_emulator.host
    assert os.environ.get("STORAGE_EMULATOR_HOST") != hyp_storage_emulator.url
