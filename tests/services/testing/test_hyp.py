"""HypProcess (services/testing/hyp.py) on a real `hyp` command."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.testing.hyp import HypProcess

pytestmark = pytest.mark.local_only("the test kit's own helpers")


def test_a_command_that_exits_fails_the_start_with_its_log(tmp_path: Path) -> None:
    process = HypProcess("no-such-command", log_path=tmp_path / "hyp.log")
    with pytest.raises(RuntimeError, match=r"(?s)hyp no-such-command: the process exited with 2.*unknown command"):
        process.start(timeout=60)
    assert process.stop() == 2  # already exited: its code, nothing signalled
