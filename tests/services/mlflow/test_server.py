from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from services.mlflow import server as mlflow_server
from services.testing.hyp import HypProcess


def test_command_uses_sqlite_and_served_artifacts_under_the_data_dir(tmp_path: Path) -> None:
    cmd = mlflow_server.server_command(
        tmp_path, "127.0.0.1", 5123, backend_store_uri=None, allowed_hosts=None, workers=1
    )
    assert cmd[1:4] == ["-m", "mlflow", "server"]
    assert cmd[cmd.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert cmd[cmd.index("--artifacts-destination") + 1] == str(tmp_path.resolve() / "artifacts")
    assert "--serve-artifacts" in cmd and cmd[cmd.index("--port") + 1] == "5123"


def test_postgres_backend_and_allowed_hosts(tmp_path: Path) -> None:
    cmd = mlflow_server.server_command(
        tmp_path,
        "0.0.0.0",
        5000,
        backend_store_uri="postgresql://u@db/mlflow",
        allowed_hosts="mlflow:5000,localhost:*",
        workers=2,
    )
    assert cmd[cmd.index("--backend-store-uri") + 1] == "postgresql://u@db/mlflow"
    assert cmd[cmd.index("--allowed-hosts") + 1] == "mlflow:5000,localhost:*"


def test_bad_port_is_a_one_line_error(capsys) -> None:
    assert mlflow_server.main(["--port", "70000"]) == 2
    assert capsys.readouterr().err == "hyp mlflow: --port: Input should be less than or equal to 65535\n"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("HYP_MLFLOW_PORT", "x", "HYP_MLFLOW_PORT: Input should be a valid integer"),
        ("HYP_MLFLOW_PORT", "70000", "HYP_MLFLOW_PORT: Input should be less than or equal to 65535"),
        ("HYP_MLFLOW_WORKERS", "0", "HYP_MLFLOW_WORKERS: Input should be greater than or equal to 1"),
    ],
)
def test_a_bad_variable_is_named_in_one_line(monkeypatch, capsys, variable: str, value: str, named: str) -> None:
    monkeypatch.setenv(variable, value)
    assert mlflow_server.main(["--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hyp mlflow: {named}") and err.count("\n") == 1, err


def test_a_flag_beats_the_variable(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setenv("HYP_MLFLOW_PORT", "not-a-port")
    assert mlflow_server.main(["--dry-run", "--data-dir", str(tmp_path), "--port", "5998"]) == 0
    assert "--port 5998" in capsys.readouterr().out


def test_dry_run_prints_the_command(capsys, tmp_path: Path) -> None:
    assert mlflow_server.main(["--dry-run", "--data-dir", str(tmp_path), "--port", "5999"]) == 0
    assert "--port 5999" in capsys.readouterr().out


@pytest.mark.integration
def test_server_runs_in_one_process_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`hyp mlflow` serves from its own process (no uvicorn child beside a `mlflow server` parent)."""
    mlflow = HypProcess(
        "mlflow",
        "--data-dir",
        str(tmp_path / "data"),
        log_path=tmp_path / "mlflow.log",
        env={**os.environ, "HYP_MLFLOW_WORKERS": "1"},
    )
    try:
        mlflow.start(timeout=120)
        proc = mlflow.process
        assert proc is not None
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert children == [], f"expected one process, found children {children}"
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status says SIGTERM
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in mlflow.log()
    finally:
        mlflow.stop()
