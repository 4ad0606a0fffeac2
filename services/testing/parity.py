"""Parity markers, after LocalStack's: which tests check behaviour that GCP documents, and which check
behaviour that exists only here.

- ``@pytest.mark.gcp_parity("https://cloud.google.com/...")``: the behaviour under test is the real
  service's as the named documentation page describes it (checked against that page and Google's own
  client library, not against a live project: the test suite never leaves 127.0.0.1).
- ``@pytest.mark.local_only("why")``: the behaviour has no GCP counterpart (the console, ``hyp`` commands,
  the emulator's data dir, /metrics...).

The closest mark wins: a test's own mark overrides its module's. Unmarked tests are not classified
(internals, or not yet looked at). As a pytest plugin (``pytest_plugins = ["services.testing.parity"]``)
this module refuses, at collection, a ``gcp_parity`` mark without a documentation URL and a ``local_only``
mark without a reason. The markers themselves are registered in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

GCP_PARITY = "gcp_parity"
LOCAL_ONLY = "local_only"
DOCS = ("https://cloud.google.com/", "https://docs.cloud.google.com/")


def parity_mark(marks: Iterable[pytest.Mark]) -> pytest.Mark | None:
    """The closest parity mark among ``marks`` (closest first, as ``Item.iter_markers`` yields them)."""
    return next((m for m in marks if m.name in (GCP_PARITY, LOCAL_ONLY)), None)


def problem(mark: pytest.Mark) -> str | None:
    """Why a parity mark is not usable, or None."""
    arg = mark.args[0] if len(mark.args) == 1 and not mark.kwargs else None
    if not isinstance(arg, str) or not arg.strip():
        wanted = "the GCP documentation URL" if mark.name == GCP_PARITY else "a reason"
        return f"{mark.name} takes one argument: {wanted}"
    if mark.name == GCP_PARITY and not arg.startswith(DOCS):
        return f"{GCP_PARITY}({arg!r}): name the GCP documentation page ({' or '.join(DOCS)}...)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    bad = []
    for item in items:
        mark = parity_mark(item.iter_markers())
        reason = problem(mark) if mark is not None else None
        if reason:
            bad.append(f"{item.nodeid}: {reason}")
    if bad:
        raise pytest.UsageError("parity markers:\n" + "\n".join(bad))
