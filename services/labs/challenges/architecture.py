"""Challenge 0: the GCP-to-local map. The participant fills a short quiz; the check marks it."""

from __future__ import annotations

import tomllib

from services.labs.challenges import NotYet
from services.labs.challenges.common import copy_solution, copy_template, lab_folder, work_folder
from services.labs.settings import LabSettings

QUIZ = "answers.toml"


def _load(path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise NotYet(f"no {path}: run `hyp lab start 0` to get the quiz") from None
    except tomllib.TOMLDecodeError as exc:
        raise NotYet(f"{path} is not valid TOML: {exc}") from None
    return {k: str(v).strip().lower() for k, v in data.items()}


def start(s: LabSettings) -> None:
    copy_template(s, 0)


def check(s: LabSettings) -> str:
    expected = _load(lab_folder(s, 0) / "solution" / QUIZ)
    path = work_folder(s, 0) / QUIZ
    given = _load(path)
    blank = [k for k in expected if not given.get(k)]
    wrong = [k for k in expected if given.get(k) and given[k] != expected[k]]
    if blank or wrong:
        parts = []
        if blank:
            parts.append(f"unanswered: {', '.join(blank)}")
        if wrong:
            parts.append(f"not right yet: {', '.join(wrong)}")
        right = len(expected) - len(blank) - len(wrong)
        raise NotYet(f"{right} of {len(expected)} right in {path}; " + "; ".join(parts))
    return f"all {len(expected)} answers right"


def solve(s: LabSettings) -> None:
    copy_solution(s, 0)
