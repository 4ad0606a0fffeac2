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


SDK_SCRIPTS = {  # challenge -> the script the participant completes (Google's own SDK, as on GCP)
    2: "create_endpoint.py",
    3: "deploy.py",
    5: "run_job.py",
    6: "deploy_custom.py",
}


@pytest.mark.parametrize("number", sorted(SDK_SCRIPTS))
def test_sdk_templates_have_gaps_the_solutions_fill_and_only_init_differs_from_gcp(number):
    folder = LABS / next(c.folder for c in CHALLENGES if c.number == number)
    template = (folder / "template" / SDK_SCRIPTS[number]).read_text()
    solution = (folder / "solution" / SDK_SCRIPTS[number]).read_text()
    assert f"TODO(lab {number}" in template and "TODO" not in solution
    ast.parse(template)
    ast.parse(solution)
    for text in (template, solution):
        assert "from services" not in text  # the workshop's code: Google's clients only
        assert "gcloud ai " in text  # the gcloud command beside the SDK call, for reference
        init = text[text.index("aiplatform.init(") :]
        init = init[: init.index("\n)\n")]
        # what differs from GCP: the API endpoint, its transport, the credentials (and project/region/bucket)
        assert 'api_endpoint=os.environ.get("HYP_ENDPOINT_URL"' in init and "AnonymousCredentials()" in init
    readme = (folder / "README.md").read_text()
    assert "| SDK (what you write) | gcloud on GCP (reference only) |" in readme


def test_lab_1_is_the_workshops_statement_with_the_project_filled_in(settings):
    from services.labs.challenges import kmeans

    solution = (LABS / "1-kmeans/solution/create_model.sql").read_text()
    template = (LABS / "1-kmeans/template/create_model.sql").read_text()
    for text in ("MODEL_REGISTRY = 'VERTEX_AI'", "MODEL_TYPE='KMEANS'", "NUM_CLUSTERS=2", "WHERE event='purchase'"):
        assert text in solution
    assert "ecommerce.purchase.tax AS tax" in solution and "___" not in solution
    assert template.count("___") == 8  # the comment names the blanks once, then seven of them
    folder = copy_template(settings, 1)
    kmeans.with_project(settings, folder)
    copied = (folder / "create_model.sql").read_text()
    assert "<project-id>" not in copied
    assert f"`{settings.project}.ecommerce_sink.anomaly_detection`" in copied
    assert "<project-id>" not in (folder / "explore.sql").read_text()


@pytest.mark.parametrize("share", [0.5, 0.2, 0.05])
def test_check_6_draws_enough_requests_to_see_every_model_with_traffic(share):
    from services.labs.challenges.deploy_custom import MISS, requests_for

    n = requests_for(share)
    assert (1 - share) ** n <= MISS < (1 - share) ** (n - 1)
    assert requests_for(1.0) == 1
