"""Test helpers for users of hyp-local: start the stack (or part of it) in containers and get ready clients.

In your conftest.py: ``pytest_plugins = ["services.testing.fixtures"]`` (fixtures ``hyp_pubsub`` and
``hyp_stack``), or use :class:`services.testing.stack.HypStack` directly as a context manager.
"""
