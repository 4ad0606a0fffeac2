"""Wires the emulator together: broker, storage, topology, gRPC and REST servers, push, housekeeping.

Start-up time is what a test fixture waits for, so parts a run may not use are imported when first used:
the durable store with ``--data-dir``, the topology loader with a topology file, push and BigQuery
delivery at the first subscription of their kind.
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from services.common import hosts
from services.pubsub import housekeeping
from services.pubsub.broker import Broker
from services.pubsub.grpc_api import PubsubGrpc
from services.pubsub.rest_api import RestServer
from services.pubsub.settings import PubsubSettings
from services.pubsub.subscription import SubState

if TYPE_CHECKING:
    from services.pubsub.bq_delivery import BigQueryDelivery
    from services.pubsub.push import PushDelivery
    from services.pubsub.storage import Store

log = logging.getLogger("hyp.pubsub")


class Emulator:
    """A running emulator; ``start()`` binds both ports, ``stop()`` shuts down cleanly."""

    def __init__(self, settings: PubsubSettings) -> None:
        self.settings = settings
        self.store: Store | None = None
        if settings.data_dir:
            from services.pubsub.storage import Store

            self.store = Store(settings.data_dir, settings.fsync_interval_s)
        self.broker = Broker(
            self.store,
            memory_budget_bytes=0 if self.store else settings.memory_budget_mb * 1024 * 1024,
            retention_speedup=settings.retention_speedup,
        )
        self.push: PushDelivery | None = None  # created at the first push subscription
        self.bigquery: BigQueryDelivery | None = None  # at the first BigQuery subscription
        self._lazy = threading.Lock()
        self.broker.on_push_subscription = self.watch_push
        self.broker.on_bigquery_subscription = self.watch_bigquery
        self._stop = threading.Event()
        self.grpc_server: grpc.Server | None = None
        self.rest: RestServer | None = None
        self.port = settings.port
        self.rest_port = settings.rest_port

    def start(self) -> None:
        s = self.settings
        if self.store is not None:
            self.store.load(self.broker)
            self.store.start(self.broker.lock)
        if s.topology and s.topology.lower() != "none":
            from services.pubsub import topology

            topology.apply(self.broker, topology.load(Path(s.topology)), s.project)
        self.grpc_server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=s.grpc_workers, thread_name_prefix="grpc"),
            handlers=PubsubGrpc(self.broker).handlers(),
            options=[
                ("grpc.max_receive_message_length", 20 * 1024 * 1024),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),
            ],
        )
        self.port = self.grpc_server.add_insecure_port(f"{s.host}:{s.port}")
        if self.port == 0:
            raise OSError(f"cannot bind gRPC to {s.host}:{s.port}")

        def rest(port: int) -> RestServer:
            return RestServer(self.broker, s.host, port, self.push_outcomes, allowed_hosts=hosts.for_settings(s))

        if s.rest_port is not None:
            self.rest = rest(s.rest_port)
        else:
            try:
                self.rest = rest(self.port + 1)
            except OSError:  # the default (gRPC port + 1) is taken: the emulator must not die of it; a free one, logged
                self.rest = rest(0)
                log.warning(
                    "rest: port %s is taken; serving on %s instead (set HYP_PUBSUB_REST_PORT)",
                    self.port + 1,
                    self.rest.port,
                )
        self.rest_port = self.rest.port
        self.grpc_server.start()
        self.rest.start()
        for sub in list(self.broker.subs.values()):
            if sub.pb.push_config.push_endpoint and not sub.pb.detached:
                self.watch_push(sub)
            if sub.pb.bigquery_config.table and not sub.pb.detached:
                self.watch_bigquery(sub)
        threading.Thread(
            target=housekeeping.run, args=(self.broker, self._stop), name="pubsub-housekeeping", daemon=True
        ).start()
        log.info(
            "pubsub emulator serving",
            extra={
                "fields": {
                    "grpc": f"{s.host}:{self.port}",
                    "rest": f"{s.host}:{self.rest_port}",
                    "data_dir": str(s.data_dir) if s.data_dir else None,
                    "topics": len(self.broker.topics),
                    "subscriptions": len(self.broker.subs),
                }
            },
        )

    def watch_push(self, sub: SubState) -> None:
        """Deliver a push subscription (the broker calls this for each new one)."""
        with self._lazy:
            if self.push is None:
                from services.pubsub.push import PushDelivery

                s = self.settings
                self.push = PushDelivery(self.broker, s.push_max_outstanding, s.push_timeout_s, s.push_max_connections)
                if self._stop.is_set():
                    self.push.close()
            push = self.push
        push.watch(sub)

    def watch_bigquery(self, sub: SubState) -> None:
        """Deliver a BigQuery subscription (the broker calls this for each new one)."""
        with self._lazy:
            if self.bigquery is None:
                from services.pubsub.bq_delivery import BigQueryDelivery

                s = self.settings
                self.bigquery = BigQueryDelivery(
                    self.broker, s.bigquery_url, s.bigquery_batch_rows, s.bigquery_linger_s
                )
                if self._stop.is_set():
                    self.bigquery.close()
            bigquery = self.bigquery
        bigquery.watch(sub)

    def push_outcomes(self) -> dict[str, dict[str, int]]:
        """Deliveries by outcome: push's ack/nack, BigQuery subscriptions' written/refused/failed_writes."""
        with self.broker.lock:
            out: dict[str, dict[str, int]] = {}
            for delivery in (self.push, self.bigquery):
                if delivery is not None:
                    out.update((k, dict(v)) for k, v in delivery.outcomes.items())
            return out

    def wait(self) -> None:
        self._stop.wait()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        with self.broker.lock:
            self.broker.timer.notify_all()
        with self._lazy:
            deliveries = [d for d in (self.push, self.bigquery) if d is not None]
        for delivery in deliveries:
            delivery.close()
        if self.grpc_server is not None:
            self.grpc_server.stop(grace=1.0).wait(2.0)
        if self.rest is not None:
            self.rest.stop()
        if self.store is not None:
            self.store.close()
        log.info("pubsub emulator stopped")
