"""Local process control: start in a new group, stop with SIGTERM then SIGKILL, pid reuse never signalled."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from services.stack import definition as d
from services.stack import processes as p


def _child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], start_new_session=True, stdout=subprocess.PIPE
    )


def test_sigterm_stops_a_well_behaved_process():
    proc = _child("import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\ntime.sleep(60)")
    assert p.stop_pid(proc.pid, 10, proc) in {"stopped", "gone"}
    assert proc.poll() is not None


def test_sigkill_after_the_bound_for_a_process_that_ignores_sigterm():
    proc = _child(
        """
        import signal, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    assert proc.stdout.readline() == b"ready\n"  # blocks until the handler is installed
    assert p.stop_pid(proc.pid, 0.5, proc) == "killed"
    assert proc.returncode == -9


def test_a_recorded_start_time_that_differs_means_not_ours():
    proc = _child("import time; time.sleep(30)")
    try:
        started = p.start_time(proc.pid)
        assert p.pid_alive(proc.pid, started)
        assert not p.pid_alive(proc.pid, started + 1)  # a reused pid: stop_pid must leave it alone
        assert p.stop_pid(proc.pid, 1, started=started + 1) == "gone"
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_recorded_reads_pid_files_in_stack_order(tmp_path):
    (tmp_path / "console.pid").write_text("12 34\n")
    (tmp_path / "pubsub.pid").write_text("56 78\n")
    (tmp_path / "bad.pid").write_text("x\n")
    assert list(p.recorded(tmp_path).items()) == [("pubsub", (56, 78)), ("console", (12, 34))]


def test_stop_recorded_clears_the_run_dir(tmp_path):
    proc = _child("import time; time.sleep(30)")
    (tmp_path / "pubsub.pid").write_text(f"{proc.pid} {p.start_time(proc.pid)}\n")
    lines: list[str] = []
    assert p.stop_recorded(tmp_path, 5, lines.append) == 1
    proc.wait(5)
    assert lines == ["pubsub: stopped"] and not (tmp_path / "pubsub.pid").exists()


def test_command_available_follows_the_cli_registry():
    assert p.command_available(d.service("pubsub"))
    fake = d.Service("x", ("no-such-command",), "app", "")
    assert not p.command_available(fake)


def test_a_command_whose_module_has_not_landed_is_not_available(monkeypatch):
    from services.common import commands

    monkeypatch.setitem(commands.COMMANDS, "half", ("services.pubsub.no_such_module", "a part not landed yet"))
    monkeypatch.setitem(commands.COMMANDS, "stdlib", ("json", "a top-level module"))
    assert not p.command_available(d.Service("half", ("half",), "app", ""))
    assert commands.available("stdlib") and not commands.available("no-such-command")


def test_hyp_help_lists_every_command_without_importing_the_packages():
    code = (
        "import sys; from services import cli; cli.main(['--help']);"
        " print(sorted(m for m in sys.modules if m.split('.')[0] in {'pyarrow', 'models', 'loadgen', 'apache_beam'}"
        " or m.startswith('services.') and m.split('.')[1] not in {'cli', 'common'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert all(f"  {name} " in out for name in ("pubsub", "detector", "sql", "lab"))
    assert out.rstrip().endswith("[]")  # nothing imported but the table and the CLI
