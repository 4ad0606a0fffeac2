"""services/common/without_pandas.py and the commands services/cli.py runs without pandas (fresh processes:
what is imported is per process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CONVERT = (
    "import io, sys\n"
    "import pyarrow as pa, pyarrow.parquet as pq\n"
    "t = pa.table({'a': [1, 2], 'b': ['x', 'y']})\n"
    "buf = io.BytesIO(); pq.write_table(t, buf); buf.seek(0)\n"
    "assert pq.read_table(buf).to_pylist() == [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'y'}]\n"
    "print('pandas' in sys.modules)\n"
)


def _python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_pyarrow_loads_pandas_on_its_first_conversion() -> None:
    """The premise: without the guard, converting Python lists loads pandas. The process leaves with os._exit
    once it has answered: with pandas loaded, pyarrow's teardown at interpreter exit once aborted ("terminate
    called without an active exception", CI), which is not what this test is about."""
    assert _python(CONVERT + "sys.stdout.flush()\nimport os\nos._exit(0)\n") == "True"


def test_kept_out_pyarrow_converts_without_pandas() -> None:
    guard = "from services.common.without_pandas import keep_pandas_out\nassert keep_pandas_out()\n"
    assert _python(guard + CONVERT) == "False"


def test_kept_out_import_pandas_fails_as_not_installed() -> None:
    code = (
        "from services.common.without_pandas import keep_pandas_out\n"
        "keep_pandas_out()\n"
        "try:\n    import pandas.core.frame\nexcept ModuleNotFoundError as e:\n    print(e.name)\n"
    )
    assert _python(code) == "pandas"


def test_already_loaded_pandas_stays() -> None:
    code = (
        "import pandas\n"
        "from services.common.without_pandas import keep_pandas_out\n"
        "print(keep_pandas_out(), pandas.DataFrame({'a': [1]}).shape)\n"
    )
    assert _python(code) == "False (1, 1)"


def test_loadgen_process_runs_without_pandas() -> None:
    """`hyp loadgen` as its own process (argv from sys.argv) sends events without loading pandas."""
    code = (
        "import sys\n"
        "from services.cli import main\n"
        "sys.argv = ['hyp', 'loadgen', '--to', 'jsonl', '--out', '-', '--count', '20', '--max', '--no-progress']\n"
        "assert main() == 0\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len([line for line in lines if line.startswith('{"data"')]) == 20
    assert lines[-1] == "False"


def test_library_call_leaves_pandas_importable() -> None:
    """main(argv) from a caller's process (a test, a notebook) refuses nothing."""
    code = (
        "import sys\n"
        "from services.cli import main\n"
        "assert main(['loadgen', '--to', 'jsonl', '--out', '-', '--count', '1', '--max', '--no-progress']) == 0\n"
        "import pandas\n"
        "print(pandas.DataFrame({'a': [1]}).shape)\n"
    )
    assert _python(code) == "(1, 1)"
