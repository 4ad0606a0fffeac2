"""Keep pandas out of a process that never builds a DataFrame.

pyarrow supports pandas optionally: the first time it converts Python objects (``pa.array(list)``,
``pa.table(dict)``) it runs ``import pandas`` to ask whether the object is a Series or a DataFrame, and
keeps pandas loaded for the life of the process. Measured here (pandas 2, pyarrow 25): about 45 MiB
resident and 0.6-0.8 s of CPU at start, in the load generator and the processor, which only ever hand
pyarrow lists and dicts. Marking pandas absent before pyarrow first looks makes pyarrow answer "no
pandas" (its own fallback when pandas is not installed) and leave it unloaded.

Only a command's own process calls this (services/cli.py, for the commands it names), never a library
function: in a process that is somebody else's (a test session, a notebook) pandas stays importable.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType


class _Refuse(importlib.abc.MetaPathFinder):
    """An import finder that answers pandas (and its submodules) "not installed".

    (``sys.modules["pandas"] = None`` is the usual marker, but Cython's import, pyarrow's, hands that None
    back as the module instead of raising.)"""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (kept out of this process: {__name__})", name=fullname
            )
        return None


def keep_pandas_out() -> bool:
    """Make ``import pandas`` fail in this process from now on, unless pandas is already loaded.

    Returns whether it did (False: pandas was imported before, or is refused already).
    """
    if "pandas" in sys.modules or any(isinstance(f, _Refuse) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _Refuse())
    return True
