"""The test kit, for hyp-local's own tests and for users' (docs/testing.md).

- :mod:`services.testing.hyp`: one ``hyp <command>`` server as a subprocess (process group, log, health).
- :mod:`services.testing.pubsub`: the emulator as a subprocess, private topics/subscriptions, bounded pulls.
- :mod:`services.testing.push`: a push endpoint that records deliveries.
- :mod:`services.testing.events`: purchase and page-view events in the workshop's shape.
- :mod:`services.testing.asgi`: an ASGI app on a real socket in a thread.
- :mod:`services.testing.vertex`: Google's Vertex AI SDK pointed at a local endpoint.
- :mod:`services.testing.bigquery` / :mod:`services.testing.storage`: Google's BigQuery and Cloud Storage
  clients pointed at a local `hyp bigquery` / `hyp storage`; :mod:`services.testing.gcp`: both services as
  local processes on free ports (:class:`~services.testing.gcp.LocalGcp`, no Docker), with clients ready.
- :mod:`services.testing.stack` / :mod:`services.testing.fixtures`: the stack in containers (testcontainers);
  in your conftest.py: ``pytest_plugins = ["services.testing.fixtures"]`` (fixtures ``hyp_pubsub``,
  ``hyp_gcp``, ``hyp_stack``, ``hyp_bigquery_client``, ``hyp_storage_client``), or use
  :class:`services.testing.stack.HypStack` directly as a context manager.
- :mod:`services.testing.local_stack`: the stack as local processes (`hyp up --detach` on a private home and a
  free port offset) with HypStack's addresses and clients, ``kill(service)`` and ``wait_restarted(service)``.
- :mod:`services.testing.addresses`: what both stacks share: ports to emulator hosts, URLs and clients.
- :mod:`services.testing.parity`: the ``gcp_parity`` / ``local_only`` markers' check (a pytest plugin).

Waiting, free ports and stopping processes live in :mod:`services.common.processes`.
"""
