"""Every HTTP service is served one way: its settings' host, port and access-log switch, our logging."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest


def test_options_follow_the_service_settings_and_the_access_log_switch(monkeypatch):
    from services.common.serve import options
    from services.processor.settings import ProcessorSettings

    monkeypatch.setenv("HYP_PROCESSOR_PORT", "18123")
    monkeypatch.delenv("HYP_ACCESS_LOG", raising=False)
    quiet = options(ProcessorSettings())
    assert (quiet["host"], quiet["port"], quiet["access_log"], quiet["log_config"]) == ("127.0.0.1", 18123, False, None)
    monkeypatch.setenv("HYP_ACCESS_LOG", "1")
    assert options(ProcessorSettings(), proxy_headers=False)["access_log"] is True
    assert options(ProcessorSettings(), port=1)["port"] == 1


@pytest.mark.parametrize(
    ("name", "flags"),
    [
        ("orchestrator", ["--no-sensors", "--data-dir", "{tmp}", "--warehouse-dir", "{tmp}"]),
        ("storage", ["--data-dir", "{tmp}"]),
    ],
)
def test_a_port_in_use_is_one_line_and_exit_1(tmp_path, name, flags):
    """run_server's commands (storage) and those with subcommands (the orchestrator) check the port the same way."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", f"services.{name}", "--port", str(port), *(f.format(tmp=tmp_path) for f in flags)],
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == f"hyp {name}: cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use"
