"""Every `hyp` command configures one way (services/common/config.py), proved command by command:

- a bad environment value: exit 2 and one line naming the variable (never a traceback);
- a bad flag: exit 2 and one line naming the flag;
- a flag beats the environment (the command's own merge, validating only: nothing is served).

The commands run in this process through `hyp`'s own entry point (services/cli.py), from an empty
folder (no .env) with no HYP_* variables but the case's.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services import cli
from services.common.commands import COMMANDS

# variables that would leak the developer's settings into a case
OWN_VARIABLES = ("PUBSUB_EMULATOR_HOST", "MLFLOW_TRACKING_URI", "BASE_IMAGE", "CUDA_BASE_IMAGE", "AIP_HTTP_PORT")


@dataclass(frozen=True)
class Case:
    bad_env: tuple[dict[str, str], list[str], str]  # environment, argv, the variable the line names
    bad_flag: tuple[list[str], str]  # argv, the flag the line names
    # environment, argv, settings field, the flag's value; None: the command has no flag that sets a setting
    beats: tuple[dict[str, str], list[str], str, Any] | None


CASES: dict[str, Case] = {
    "pubsub": Case(
        ({"HYP_PUBSUB_PORT": "x"}, [], "HYP_PUBSUB_PORT"),
        (["--port", "99999"], "--port"),
        ({"HYP_PUBSUB_PORT": "x"}, ["--port", "0"], "port", 0),
    ),
    "loadgen": Case(
        ({"HYP_LOADGEN_USERS": "0"}, ["--to", "jsonl", "--out", "-", "--count", "1"], "HYP_LOADGEN_USERS"),
        (["--users", "0"], "--users"),
        None,  # tested by running it: test_loadgen_flag_beats_the_environment
    ),
    "train": Case(
        ({"HYP_TRAIN_ROWS": "many"}, [], "HYP_TRAIN_ROWS"),
        (["--seed", "x"], "--seed"),
        ({"HYP_SEED": "x"}, ["--seed", "3"], "seed", 3),
    ),
    "models": Case(
        ({"HYP_MLFLOW_PORT": "x"}, ["list"], "HYP_MLFLOW_PORT"),
        (["--bogus", "list"], "--bogus"),
        (
            {"MLFLOW_TRACKING_URI": "http://127.0.0.1:1"},
            ["--tracking-uri", "http://127.0.0.1:2", "list"],
            "mlflow_tracking_uri",
            "http://127.0.0.1:2",
        ),
    ),
    "mlflow": Case(
        ({"HYP_MLFLOW_PORT": "x"}, ["--dry-run"], "HYP_MLFLOW_PORT"),
        (["--port", "70000"], "--port"),
        ({"HYP_MLFLOW_PORT": "x"}, ["--port", "5001"], "mlflow_port", 5001),
    ),
    "detector": Case(
        ({"HYP_DETECTOR_BATCH_SIZE": "x"}, [], "HYP_DETECTOR_BATCH_SIZE"),
        (["--ack-deadline", "5"], "--ack-deadline"),
        ({"HYP_DETECTOR_BATCH_SIZE": "x"}, ["--detector-batch-size", "10"], "batch_size", 10),
    ),
    "endpoint": Case(
        ({"HYP_ENDPOINT_WORKERS": "x"}, [], "HYP_ENDPOINT_WORKERS"),
        (["--workers", "0"], "--workers"),
        ({"HYP_ENDPOINT_WORKERS": "x"}, ["--workers", "2"], "workers", 2),
    ),
    "processor": Case(
        ({"HYP_PROCESSOR_PORT": "x"}, [], "HYP_PROCESSOR_PORT"),
        (["--port", "0"], "--port"),
        ({"HYP_PROCESSOR_PORT": "x"}, ["--port", "8181"], "port", 8181),
    ),
    "orchestrator": Case(
        ({"HYP_ORCH_PORT": "x"}, [], "HYP_ORCH_PORT"),
        (["--port", "70000"], "--port"),
        ({"HYP_ORCH_PORT": "x"}, ["--port", "8191"], "port", 8191),
    ),
    "console": Case(
        ({"HYP_CONSOLE_REFRESH_S": "0"}, [], "HYP_CONSOLE_REFRESH_S"),
        (["--refresh", "0"], "--refresh"),
        ({"HYP_CONSOLE_REFRESH_S": "0"}, ["--refresh", "3"], "refresh_s", 3.0),
    ),
    "sql": Case(
        ({"HYP_ACCESS_LOG": "maybe"}, ["SELECT 1"], "HYP_ACCESS_LOG"),
        (["--max-rows", "x", "SELECT 1"], "--max-rows"),
        ({"HYP_WAREHOUSE_DIR": "env-wh"}, ["--warehouse-dir", "flag-wh", "SELECT 1"], "warehouse_dir", Path("flag-wh")),
    ),
    "bigquery": Case(
        ({"HYP_BIGQUERY_PORT": "x"}, [], "HYP_BIGQUERY_PORT"),
        (["--port", "99999"], "--port"),
        ({"HYP_BIGQUERY_PORT": "x"}, ["--port", "9150"], "port", 9150),
    ),
    "gcloud": Case(
        ({"HYP_PUBSUB_MEMORY_BUDGET_MB": "x"}, ["beta", "emulators", "pubsub", "start"], "HYP_PUBSUB_MEMORY_BUDGET_MB"),
        (["beta", "emulators", "pubsub", "start", "--bogus"], "--bogus"),
        ({"HYP_PUBSUB_PORT": "x"}, ["--port", "0"], "port", 0),
    ),
    "storage": Case(
        ({"HYP_STORAGE_PORT": "x"}, [], "HYP_STORAGE_PORT"),
        (["--port", "99999"], "--port"),
        ({"HYP_STORAGE_DATA_DIR": "env-dir"}, ["--data-dir", "flag-dir"], "data_dir", Path("flag-dir")),
    ),
    "warehouse": Case(
        ({"HYP_ACCESS_LOG": "maybe"}, ["stats"], "HYP_ACCESS_LOG"),
        (["compact", "--min-files", "x"], "--min-files"),
        ({"HYP_WAREHOUSE_DIR": "env-wh"}, ["--warehouse-dir", "flag-wh", "stats"], "warehouse_dir", Path("flag-wh")),
    ),
    "up": Case(
        ({"HYP_UP_HEALTH_TIMEOUT": "x"}, [], "HYP_UP_HEALTH_TIMEOUT"),
        (["--health-timeout", "0"], "--health-timeout"),
        ({"HYP_UP_HEALTH_TIMEOUT": "x"}, ["--health-timeout", "5"], "health_timeout_s", 5.0),
    ),
    "down": Case(
        ({"HYP_UP_STOP_TIMEOUT": "x"}, [], "HYP_UP_STOP_TIMEOUT"),
        (["--timeout", "0"], "--timeout"),
        ({"HYP_UP_STOP_TIMEOUT": "x"}, ["--timeout", "3"], "stop_timeout_s", 3.0),
    ),
    "status": Case(
        ({"HYP_UP_STOP_TIMEOUT": "x"}, [], "HYP_UP_STOP_TIMEOUT"),
        (["--bogus"], "--bogus"),
        ({"HYP_HOME": "env-home"}, ["--home", "flag-home"], "home", Path("flag-home")),
    ),
    "logs": Case(
        ({"HYP_UP_STOP_TIMEOUT": "x"}, ["pubsub"], "HYP_UP_STOP_TIMEOUT"),
        (["pubsub", "--tail", "-1"], "--tail"),
        ({"HYP_HOME": "env-home"}, ["pubsub", "--home", "flag-home"], "home", Path("flag-home")),
    ),
    "images": Case(
        ({"BASE_IMAGE": ""}, ["list"], "BASE_IMAGE"),
        (["build", "--image", "nope"], "--image"),
        ({"BASE_IMAGE": ""}, ["build", "--base-image", "python:3.11"], "base_image", "python:3.11"),
    ),
    "lab": Case(
        ({"HYP_LAB_EVENTS": "3"}, ["list"], "HYP_LAB_EVENTS"),
        (["reset", "--bogus"], "--bogus"),
        None,  # its settings come from the environment only: test_lab_has_no_setting_flags
    ),
}


def test_every_command_has_a_case() -> None:
    assert set(CASES) == set(COMMANDS)


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[dict[str, str]], None]:
    """An empty working folder and no HYP_* variable; then the case's environment."""
    for name in list(os.environ):
        if name.startswith("HYP_") or name in OWN_VARIABLES:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    for module in list(sys.modules.values()):  # cached get_settings() of an earlier test
        clear = getattr(getattr(module, "get_settings", None), "cache_clear", None)
        if clear is not None:
            clear()

    def apply(env: dict[str, str]) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    return apply


def hyp(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """`hyp ARGV` in this process: its exit status and its stderr lines."""
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err.splitlines()


def _params(kind: str) -> list[Any]:
    return [pytest.param(name, id=name) for name, case in CASES.items() if kind != "beats" or case.beats is not None]


@pytest.mark.parametrize("name", _params("bad_env"))
def test_a_bad_environment_value_is_one_line_naming_the_variable(
    name: str, clean: Callable[[dict[str, str]], None], capsys: pytest.CaptureFixture[str]
) -> None:
    env, argv, variable = CASES[name].bad_env
    clean(env)
    code, lines = hyp([name, *argv], capsys)
    assert (code, len(lines)) == (2, 1), lines
    assert lines[0].startswith(f"hyp {name}: {variable}: "), lines


@pytest.mark.parametrize("name", _params("bad_flag"))
def test_a_bad_flag_is_one_line_naming_the_flag(
    name: str, clean: Callable[[dict[str, str]], None], capsys: pytest.CaptureFixture[str]
) -> None:
    argv, flag = CASES[name].bad_flag
    clean({})
    code, lines = hyp([name, *argv], capsys)
    assert (code, len(lines)) == (2, 1), lines
    assert lines[0].startswith(f"hyp {name}: ") and flag in lines[0], lines


def _merged(name: str, argv: list[str]) -> Any:
    """The settings command ``name`` runs with for ``argv``: its own flags merged over the environment."""
    if name == "detector":
        from apache_beam.options.pipeline_options import PipelineOptions

        from services.detector.__main__ import _beam_args
        from services.detector.options import settings_for

        return settings_for(PipelineOptions(_beam_args(argv)))
    module = importlib.import_module(COMMANDS[name][0])
    return module.command().parse(argv)[1]


@pytest.mark.parametrize("name", _params("beats"))
def test_a_flag_beats_the_environment(name: str, clean: Callable[[dict[str, str]], None]) -> None:
    beats = CASES[name].beats
    assert beats is not None
    env, argv, setting, value = beats
    clean(env)
    assert getattr(_merged(name, argv), setting) == value


def test_loadgen_flag_beats_the_environment(
    clean: Callable[[dict[str, str]], None], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clean({"HYP_LOADGEN_USERS": "0", "HYP_LOADGEN_SEED": "x"})
    out = tmp_path / "events.jsonl"
    code, lines = hyp(["loadgen", "--to", "jsonl", "--out", str(out), "--count", "3", "--users", "5", "--seed", "1"],
                      capsys)  # fmt: skip
    assert code == 0, lines
    assert len(out.read_text().splitlines()) == 3


def test_lab_has_no_setting_flags() -> None:
    from services.labs.__main__ import command

    assert command().flags == []


@pytest.mark.parametrize("name", list(CASES))
def test_help_exits_0_with_nothing_on_stderr(
    name: str, clean: Callable[[dict[str, str]], None], capsys: pytest.CaptureFixture[str]
) -> None:
    clean({})
    code, lines = hyp([name, "--help"], capsys)
    assert (code, lines) == (0, [])
