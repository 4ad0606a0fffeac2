"""Fast tests of `hyp lab`: the challenge folders, the quiz check, templates and solutions, the CLI's errors."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from services.labs.__main__ import main
from services.labs.challenges import CHALLENGES, NotYet, architecture
from services.labs.challenges.common import copy_solution, copy_template, work_folder
from services.labs.runtime import read_state, update_state
from services.labs.settings import LabSettings

LABS = Path(__file__).resolve().parents[3] / "labs"


@pytest.fixture
def settings(tmp_path: Path) -> LabSettings:
    return LabSettings(HYP_LAB_DIR=tmp_path / "lab", HYP_WAREHOUSE_DIR=tmp_path / "warehouse")


@pytest.mark.parametrize("challenge", CHALLENGES, ids=lambda c: c.folder)
def test_each_challenge_has_a_readme_with_hints_and_a_folded_solution(challenge):
    text = (LABS / challenge.folder / "README.md").read_text()
    assert text.startswith(f"# Challenge {challenge.number}:")
    assert "## Your challenge" in text
    assert "<details><summary>Solution</summary>" in text
    assert text.count("<details>") == text.count("</details>")
    assert f"hyp lab check {challenge.number}" in text


@pytest.mark.parametrize("challenge", CHALLENGES, ids=lambda c: c.folder)
def test_each_challenge_module_has_the_three_verbs(challenge):
    code = challenge.code()
    assert all(callable(getattr(code, verb, None)) for verb in ("start", "check", "solve"))


def test_the_processor_template_has_four_gaps_and_the_solution_none():
    template = (LABS / "4-processor/template/main.py").read_text()
    solution = (LABS / "4-processor/solution/main.py").read_text()
    assert sorted(set(re.findall(r"TODO\(lab 4, gap (\d)\)", template))) == ["1", "2", "3", "4"]
    assert "TODO" not in solution and "NotImplementedError" not in solution
    # the workshop's own code: rows go in with Google's BigQuery client, not through hyp-local's modules
    assert "insert_rows_json(TABLE_ID" in solution and "from services" not in solution + template
    ast.parse(template)  # the participant's starting point must at least import
    # outside the gaps, the template is the solution: the same functions and routes
    names = {n.name for n in ast.walk(ast.parse(solution)) if isinstance(n, ast.FunctionDef)}
    assert names == {n.name for n in ast.walk(ast.parse(template)) if isinstance(n, ast.FunctionDef)}


def test_quiz_fails_until_answered_then_passes(settings):
    with pytest.raises(NotYet, match=r"no .*answers\.toml"):
        architecture.check(settings)
    architecture.start(settings)
    with pytest.raises(NotYet, match=r"0 of 9 right.*unanswered: pubsub"):
        architecture.check(settings)
    path = work_folder(settings, 0) / "answers.toml"
    path.write_text(path.read_text().replace('pubsub = ""', 'pubsub = "detector"'))
    with pytest.raises(NotYet, match="not right yet: pubsub"):
        architecture.check(settings)
    architecture.solve(settings)
    assert architecture.check(settings) == "all 9 answers right"


def test_quiz_that_is_not_toml_gets_a_clear_message(settings):
    architecture.start(settings)
    (work_folder(settings, 0) / "answers.toml").write_text("pubsub = ")
    with pytest.raises(NotYet, match="not valid TOML"):
        architecture.check(settings)


def test_start_keeps_the_participants_files_and_solve_replaces_them(settings):
    folder = copy_template(settings, 4)
    mine = folder / "main.py"
    mine.write_text("# my work\n")
    copy_template(settings, 4)
    assert mine.read_text() == "# my work\n"
    copy_solution(settings, 4)
    assert "TODO" not in mine.read_text()


def test_state_round_trips_and_merges(settings):
    assert read_state(settings) == {}
    update_state(settings, baseline_1=3)
    update_state(settings, baseline_5=7)
    assert read_state(settings) == {"baseline_1": 3, "baseline_5": 7}


@pytest.mark.parametrize("argv", [["check", "9"], ["start", "x"], ["solve", "-1"]])
def test_bad_challenge_number_is_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hyp lab: challenge:") and "0 to 7" in err and "\n" not in err


def test_check_and_reset_through_the_cli(tmp_path, monkeypatch, capsys):
    from services.labs.settings import get_settings

    monkeypatch.setenv("HYP_LAB_DIR", str(tmp_path / "lab"))
    get_settings.cache_clear()
    try:
        assert main(["start", "0"]) == 0
        assert main(["check", "0"]) == 1
        assert "NOT YET challenge 0:" in capsys.readouterr().out
        assert main(["solve", "0"]) == 0
        assert main(["check", "0"]) == 0
        assert "PASS challenge 0: all 9 answers right" in capsys.readouterr().out
        assert main(["reset"]) == 0
        assert not (tmp_path / "lab").exists()
    finally:
        get_settings.cache_clear()


def test_env_prints_export_lines(monkeypatch, capsys):
    from services.labs.settings import get_settings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    get_settings.cache_clear()
    try:
        assert main(["env"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "export MLFLOW_TRACKING_URI=http://127.0.0.1:5999" in out
    assert "export BIGQUERY_EMULATOR_HOST=http://127.0.0.1:9050" in out  # lab 4's service writes through it
