"""`hyp up|down|status|logs` argument handling and service selection (nothing started)."""

from __future__ import annotations

import contextlib

import pytest

from services.stack import down, logs, status, up


def test_select_adds_dependencies_in_order_and_drops_without():
    names = [s.name for s in up.select(["processor"], [])]
    assert names.index("pubsub") < names.index("processor") and names.index("endpoint") < names.index("processor")
    assert "loadgen" not in names and "init" in names
    assert "console" not in [s.name for s in up.select(None, ["console"])]


@pytest.mark.parametrize(
    "argv, text",
    [
        (["--services", "nope"], "unknown service 'nope'"),
        (["--rate", "0"], "--rate: must be > 0"),
        (["--duration", "-1"], "--duration: must be > 0"),
    ],
)
def test_up_rejects_bad_input_with_one_line(argv, text, capsys, tmp_path):
    try:
        code = up.main([*argv, "--home", str(tmp_path)])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    assert code == 2
    assert text in capsys.readouterr().err


def test_logs_names_unknown_service_and_missing_log(capsys, tmp_path):
    assert logs.main(["nope", "--home", str(tmp_path)]) == 2
    assert "unknown service 'nope'" in capsys.readouterr().err
    assert logs.main(["pubsub", "--home", str(tmp_path)]) == 1
    assert "no log for pubsub" in capsys.readouterr().err


def test_logs_tail(capsys, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "pubsub.log").write_text("a\nb\nc\n")
    assert logs.main(["pubsub", "--home", str(tmp_path), "-n", "2"]) == 0
    assert capsys.readouterr().out == "b\nc\n"


def test_status_and_down_with_nothing_running(capsys, tmp_path):
    assert status.main(["--home", str(tmp_path)]) == 3
    assert "no stack running" in capsys.readouterr().err
    assert down.main(["--home", str(tmp_path)]) == 0
    assert "nothing was running" in capsys.readouterr().out


def test_sigterm_in_the_foreground_is_not_swallowed_by_a_broad_except_and_a_second_one_is_ignored(tmp_path):
    # the live summary reads the warehouse under `except Exception` (it may be half-written): a SIGTERM landing
    # there must still stop the stack, and one arriving while the stack stops must not cut the stop short
    handler = up._stop_once()
    with pytest.raises(up._Stop), contextlib.suppress(Exception):  # the suppress: what the warehouse tally does
        handler(15, None)
    handler(15, None)  # the second: no exception, the stop goes on
