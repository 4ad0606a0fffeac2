"""`hyp train` and `hyp models` read their settings through services/common/config: one line, exit 2.

A bad variable is named, a bad flag is named, and a flag beats the variable. Every case here fails
before any data is read or any registry is called.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.training import models_cli, train_cli


@pytest.mark.parametrize("main", [train_cli.main, models_cli.main], ids=["train", "models"])
def test_a_bad_variable_is_named_in_one_line(main, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HYP_SEED", "seven")
    argv = [] if main is train_cli.main else ["list"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "HYP_SEED: Input should be a valid integer" in err and err.count("\n") == 1, err


def test_a_bad_flag_is_named_in_one_line(capsys) -> None:
    assert train_cli.main(["--eval-rows", "many"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hyp train: --eval-rows: Input should be a valid integer") and err.count("\n") == 1, err


def test_a_flag_beats_the_variable(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setenv("HYP_DEFAULT_MODEL", "no-such-kind")
    missing = tmp_path / "rows.csv"
    # --model kmeans wins over the variable: the run gets past the kind check to the missing file
    assert train_cli.main(["--model", "kmeans", "--data", str(missing)]) == 2
    assert capsys.readouterr().err == f"hyp train: --data: no such file {missing}\n"
    assert train_cli.main(["--data", str(missing)]) == 2
    assert "unknown model 'no-such-kind' (models: kmeans, iforest, ecod" in capsys.readouterr().err


def test_train_accepts_every_kind_of_the_registry_and_names_them(capsys) -> None:
    assert train_cli.main(["--model", "nope"]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == "hyp train: unknown model 'nope' (models: kmeans, iforest, ecod, copod, hbos, lof, autoencoder, envelope)\n"
    )
