from __future__ import annotations

from pathlib import Path

from models import mlflow_server


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
    assert "--port must be 1..65535" in capsys.readouterr().err


def test_dry_run_prints_the_command(capsys, tmp_path: Path) -> None:
    assert mlflow_server.main(["--dry-run", "--data-dir", str(tmp_path), "--port", "5999"]) == 0
    assert "--port 5999" in capsys.readouterr().out
