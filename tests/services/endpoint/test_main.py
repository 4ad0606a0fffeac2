"""`hyp endpoint`'s command line: the fast event loop and HTTP parser are the ones uvicorn gets."""

from __future__ import annotations

import pytest

from services.common.serve import server_options
from services.endpoint.__main__ import main


def test_uvicorn_runs_on_uvloop_and_httptools_from_the_serve_extra():
    assert server_options() == {"loop": "uvloop", "http": "httptools"}


def test_bad_settings_exit_non_zero_with_one_line(capsys, monkeypatch):
    monkeypatch.setenv("HYP_ENDPOINT_MAX_INSTANCES", "0")
    assert main([]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hyp endpoint: ") and "\n" not in err


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "Vertex AI" in capsys.readouterr().out
