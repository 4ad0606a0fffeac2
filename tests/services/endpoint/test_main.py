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


def test_workers_get_the_parents_settings_in_their_factory_not_the_environment(monkeypatch):
    """--workers N: uvicorn pickles the app factory into each worker process (spawn); the factory carries
    the parent's merged settings, so a flag reaches the workers and os.environ is left as it was."""
    import os
    import pickle
    from functools import partial

    from services.endpoint.__main__ import build_checked_app, command

    monkeypatch.setenv("HYP_ENDPOINT_ID", "from-env")
    before = dict(os.environ)
    _, settings = command().parse(["--endpoint-id", "from-flag", "--workers", "2", "--model-name", "m"])
    factory = pickle.loads(pickle.dumps(partial(build_checked_app, settings)))
    assert factory.func is build_checked_app
    assert (factory.args[0].endpoint_id, factory.args[0].model_name, factory.args[0].workers) == ("from-flag", "m", 2)
    assert dict(os.environ) == before
