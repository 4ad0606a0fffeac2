"""`hyp up`'s log files: a service's structured log (rotated by the service) and its raw output (bounded at
each start), and `hyp logs` showing both in time order."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from services.stack import definition as d
from services.stack import logs as logs_cli
from services.stack import processes as p

ROOT = Path(__file__).resolve().parents[3]

SERVICE = d.Service(name="pubsub", command=("nope",), image="app", summary="a command the CLI does not know")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_start_sends_raw_output_to_the_out_file_after_a_start_mark(tmp_path):
    r = p.start(SERVICE, tmp_path, _env(), ["nope"], ROOT)
    assert r.proc is not None and r.proc.wait(timeout=60) != 0
    raw = p.out_file(tmp_path, "pubsub").read_text()
    assert raw.startswith("--- hyp up: starting pubsub at ") and ": hyp nope\n" in raw
    assert "nope" in raw.splitlines()[-1]  # the CLI's own complaint, on stderr
    assert not p.log_file(tmp_path, "pubsub").exists()  # nothing logged through services/common/logs.py
    assert "hyp up: starting pubsub" in p.tail(r.log)


def test_raw_output_over_its_bound_is_moved_aside_at_a_start(tmp_path):
    big = p.out_file(tmp_path, "pubsub")
    big.write_bytes(b"old line\n" * (p.RAW_MAX_BYTES // 9 + 1))
    r = p.start(SERVICE, tmp_path, _env(), ["nope"], ROOT)
    assert r.proc is not None and r.proc.wait(timeout=60) != 0
    assert (tmp_path / "pubsub.out.1").stat().st_size > p.RAW_MAX_BYTES
    assert big.stat().st_size < 10_000
    r = p.start(SERVICE, tmp_path, _env(), ["nope"], ROOT)  # small: appended to, not moved
    assert r.proc is not None and r.proc.wait(timeout=60) != 0
    assert big.read_text().count("--- hyp up: starting pubsub") == 2


def test_hyp_logs_merges_the_log_its_rotated_files_and_raw_output_in_order(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    log, out = p.log_file(run, "pubsub"), p.out_file(run, "pubsub")
    out.write_text(f"{p.START_MARK}pubsub at 2026-01-01T00:00:00.000Z: hyp pubsub\n")
    child = textwrap.dedent(
        """
        import logging
        from services.common.logs import setup_logging
        setup_logging("INFO")
        for i in range(400):
            logging.getLogger("svc").info("record %d %s", i, "y" * 40)
        print("a third-party print", flush=True)
        raise SystemExit("a crash at the end")
        """
    )
    env = {**_env(), "HYP_LOG_FILE": str(log), "HYP_LOG_MAX_BYTES": "10000", "HYP_LOG_BACKUPS": "2"}
    with out.open("ab") as fh:
        done = subprocess.run([sys.executable, "-c", child], env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=60)
    assert done.returncode == 1
    assert sorted(f.name for f in run.iterdir()) == ["pubsub.log", "pubsub.log.1", "pubsub.log.2", "pubsub.out"]
    assert logs_cli.main(["pubsub", "--home", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(p.START_MARK)
    records = [int(line.split("record ")[1].split()[0]) for line in lines if '"record ' in line]
    assert records == list(range(records[0], 400)) and records[0] > 0  # the oldest rotated away, in order
    assert lines[-2:] == ["a third-party print", "a crash at the end"]  # raw output after the run's log
    assert logs_cli.main(["pubsub", "--home", str(tmp_path), "-n", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith('"record 399 ' + "y" * 40 + '"}')
