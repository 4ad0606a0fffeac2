"""Service logs: stderr by default, a size-rotated file with a bounded total when HYP_LOG_FILE names one."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common import logs


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # an in-process uvicorn started by an earlier test leaves its own config on these (propagate off, a handler)
    others = {}
    for name in (*logs.PER_REQUEST, logs.ACCESS):
        logger = logging.getLogger(name)
        others[name] = (logger.level, logger.propagate, logger.handlers[:])
        logger.propagate, logger.handlers[:] = True, []
    yield root
    for h in root.handlers:
        h.close()
    root.handlers[:], root.level = handlers, level
    for name, (old, propagate, kept) in others.items():
        logger = logging.getLogger(name)
        logger.setLevel(old)
        logger.propagate, logger.handlers[:] = propagate, kept


def _total(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir())


def test_without_a_file_records_go_to_stderr_as_json(root_logger, capsys):
    logs.setup_logging("INFO", env={})
    logging.getLogger("svc").info("hello", extra={"fields": {"n": 1}})
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert entry["msg"] == "hello" and entry["n"] == 1 and entry["ts"].endswith("Z")


@pytest.mark.parametrize("backups", [2, 0])
def test_a_logger_writing_past_the_bound_keeps_the_total_under_it(root_logger, tmp_path, backups):
    path = tmp_path / "svc.log"
    env = {"HYP_LOG_FILE": str(path), "HYP_LOG_MAX_BYTES": "20000", "HYP_LOG_BACKUPS": str(backups)}
    target = logs.file_target(env)
    assert target is not None and target.bound == 20_000 * (backups + 1)
    logs.setup_logging("INFO", env=env)
    log = logging.getLogger("svc")
    for i in range(5000):  # ~500 KB of records: 25 times a file's size
        log.info("record %d %s", i, "x" * 30)
    written = _total(tmp_path)
    assert written <= target.bound
    assert written > target.bound // 2  # it kept the newest records, not nothing
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["svc.log", *(f"svc.log.{n}" for n in range(1, backups + 1))]
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["msg"].startswith("record 4999 ")


def test_defaults_bound_a_service_to_15_mb(tmp_path):
    target = logs.file_target({"HYP_LOG_FILE": str(tmp_path / "a.log")})
    assert target == logs.FileTarget(str(tmp_path / "a.log"), 5_000_000, 2) and target.bound == 15_000_000
    assert logs.file_target({"HYP_LOG_LEVEL": "INFO"}) is None


def test_a_bad_size_is_named(tmp_path):
    with pytest.raises(ValueError, match="HYP_LOG_MAX_BYTES"):
        logs.file_target({"HYP_LOG_FILE": str(tmp_path / "a.log"), "HYP_LOG_MAX_BYTES": "lots"})


def test_setting_up_again_closes_the_previous_file(root_logger, tmp_path):
    logs.setup_logging("INFO", env={"HYP_LOG_FILE": str(tmp_path / "a.log")})
    first = root_logger.handlers[0]
    logs.setup_logging("DEBUG", env={"HYP_LOG_FILE": str(tmp_path / "b.log")})
    assert isinstance(first, logging.FileHandler) and first.stream is None
    logging.getLogger("svc").debug("to b")
    assert "to b" in (tmp_path / "b.log").read_text()


@pytest.mark.parametrize(
    ("level", "env", "httpx_logged", "access_logged"),
    [
        ("INFO", {}, False, False),
        ("INFO", {"HYP_ACCESS_LOG": "true"}, False, True),
        ("DEBUG", {}, True, True),
    ],
)
def test_per_request_lines_only_at_debug_or_opted_in(root_logger, tmp_path, level, env, httpx_logged, access_logged):
    path = tmp_path / "svc.log"
    logs.setup_logging(level, env={"HYP_LOG_FILE": str(path), **env})
    logging.getLogger("svc").info("state changed")
    logging.getLogger("httpx").info("HTTP Request: POST http://127.0.0.1:8080/predict")
    logging.getLogger("uvicorn.access").info('127.0.0.1:1 - "POST / HTTP/1.1" 200')
    text = path.read_text()
    assert "state changed" in text
    assert ("HTTP Request" in text) == httpx_logged
    assert ("POST / HTTP/1.1" in text) == access_logged
    logging.getLogger("httpx").warning("a failed request")
    assert "a failed request" in path.read_text()
