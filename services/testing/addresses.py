"""The addresses and clients of a running stack, whichever way it runs: in containers (``HypStack``) or as
local processes (``LocalHypStack``). A stack says where one of its services' ports is published (``port``);
everything else (emulator hosts, URLs, Google's clients, resource names) follows from that here, once."""

from __future__ import annotations

from services.common import names
from services.stack import definition as d
from services.testing.gcp import GoogleClients
from services.testing.pubsub import PubsubTarget


class StackAddresses(PubsubTarget, GoogleClients):
    project: str

    def port(self, service: str, port: int) -> int:
        """Where ``service``'s ``port`` (its port in services/stack/definition.py) answers on 127.0.0.1."""
        raise NotImplementedError

    @property
    def pubsub_host(self) -> str:
        """What PUBSUB_EMULATOR_HOST would be for this stack."""
        return f"127.0.0.1:{self.port('pubsub', d.PUBSUB_PORT)}"

    @property
    def pubsub_rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port('pubsub', d.PUBSUB_REST_PORT)}"

    @property
    def bigquery_url(self) -> str:
        """What BIGQUERY_EMULATOR_HOST would be for this stack (``bigquery_client()`` is pointed at it)."""
        return f"http://127.0.0.1:{self.port('bigquery', d.BIGQUERY_PORT)}"

    @property
    def storage_url(self) -> str:
        """What STORAGE_EMULATOR_HOST would be for this stack (``storage_client()`` is pointed at it)."""
        return f"http://127.0.0.1:{self.port('storage', d.STORAGE_PORT)}"

    @property
    def mlflow_uri(self) -> str:
        return f"http://127.0.0.1:{self.port('mlflow', d.MLFLOW_PORT)}"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port('endpoint', d.ENDPOINT_PORT)}"

    @property
    def predict_url(self) -> str:
        return names.predict_url(self.endpoint_url, self.project, d.TUNABLES["HYP_LOCATION"], "1")

    # the names docs/stack.md shows (``hyp_stack.topic(...)``): the same as topic_path / subscription_path
    def topic(self, name: str) -> str:
        return self.topic_path(name)

    def subscription(self, name: str) -> str:
        return self.subscription_path(name)
