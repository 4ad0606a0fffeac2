"""The parity markers' check (services/testing/parity.py): what it accepts and what stops collection."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services.testing.parity import parity_mark, problem

pytestmark = pytest.mark.local_only("the test suite's own conventions")
ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "mark",
    [
        pytest.mark.gcp_parity("https://cloud.google.com/pubsub/docs/push"),
        pytest.mark.gcp_parity("https://docs.cloud.google.com/pubsub/docs/exactly-once-delivery"),
        pytest.mark.local_only("the console"),
    ],
)
def test_a_docs_url_or_a_reason_is_accepted(mark: pytest.MarkDecorator) -> None:
    assert problem(mark.mark) is None


@pytest.mark.parametrize(
    ("mark", "says"),
    [
        (pytest.mark.gcp_parity(), "the GCP documentation URL"),
        (pytest.mark.gcp_parity("https://example.com/pubsub"), "name the GCP documentation page"),
        (pytest.mark.gcp_parity(url="https://cloud.google.com/pubsub"), "one argument"),
        (pytest.mark.local_only(), "a reason"),
        (pytest.mark.local_only(" "), "a reason"),
    ],
)
def test_a_mark_without_its_argument_is_refused(mark: pytest.MarkDecorator, says: str) -> None:
    assert says in (problem(mark.mark) or "")


def test_the_closest_mark_wins() -> None:
    test_level, module_level = pytest.mark.local_only("x").mark, pytest.mark.gcp_parity("y").mark
    assert parity_mark([pytest.mark.integration.mark, test_level, module_level]) is test_level
    assert parity_mark([pytest.mark.integration.mark]) is None


def test_collection_stops_on_a_bad_mark(tmp_path: Path) -> None:
    (tmp_path / "test_bad.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.gcp_parity('somewhere')\n"
        "def test_one():\n    pass\n\n"
        "@pytest.mark.local_only('fine')\n"
        "def test_two():\n    pass\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "services.testing.parity",
            "--co",
            "-q",
            "-c",
            "/dev/null",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert "test_bad.py::test_one: gcp_parity('somewhere')" in run.stderr
    assert "test_two" not in run.stderr
