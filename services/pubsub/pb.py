"""google.pubsub.v1's message types for the emulator, without google.pubsub_v1's package ``__init__``.

``from google.pubsub_v1 import types`` first runs ``google/pubsub_v1/__init__.py``, which imports the
generated Publisher, Subscriber and SchemaService clients (sync and async, with google.api_core's gapic
machinery, google.auth, cryptography, requests): about a second of the emulator's start-up, for code the
emulator never calls. The emulator needs only the message classes, which live in two files of that package,
``types/schema.py`` and ``types/pubsub.py`` (proto-plus; they register google.pubsub.v1's descriptors).

:func:`load` runs exactly those two files under their real module names and keeps them in ``sys.modules``.
While they run, the two packages above them are stand-ins (``types/pubsub.py`` imports
``google.pubsub_v1.types.schema`` by its full name); the stand-ins are removed afterwards, so a later
``import google.pubsub_v1`` or ``google.cloud.pubsub`` in the same process runs the real package
``__init__`` files, which find both modules already loaded and reuse them: every message class, and every
descriptor, exists once. Python sets a package's attribute for a submodule only when it loads that
submodule itself, so a one-shot finder (:class:`_Reattach`) gives the real ``google.pubsub_v1.types``
its ``pubsub`` and ``schema`` attributes when it is first imported. If the package was imported already,
it is used as it is. (Only ``import google.pubsub_v1.types.pubsub`` as a process's very first import of
the package skips its parents, as Python does for any module already in ``sys.modules``.)

``types`` is what ``google.pubsub_v1.types`` would be for the emulator: attribute access falls through to
the two modules (``types.Topic``, ``types.PullRequest``, ``types.Encoding``).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

PACKAGE = "google.pubsub_v1"
_PARTS = ("schema", "pubsub")  # pubsub.py imports schema.py
_lock = threading.Lock()


class _Types:
    """``google.pubsub_v1.types``'s message classes, looked up in the loaded modules."""

    def __init__(self) -> None:
        self._modules: tuple[ModuleType, ...] = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        for module in self._modules or load():
            if name in module.__protobuf__.manifest:
                return getattr(module, name)
        raise AttributeError(f"google.pubsub.v1 has no message or enum {name!r}")


types: Any = _Types()


def load() -> tuple[ModuleType, ...]:
    """The two type modules, loaded once (see the module docstring)."""
    with _lock:
        if not types._modules:
            types._modules = _load()
        return types._modules  # type: ignore[no-any-return]


class _Reattach(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the real ``google.pubsub_v1.types`` once and sets its two submodule attributes before its
    ``__init__`` runs; everything else is the path finder's own spec and loader."""

    def __init__(self, modules: dict[str, ModuleType]) -> None:
        self.modules = modules
        self.inner: Any = None

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != f"{PACKAGE}.types":
            return None
        with _lock:
            if self in sys.meta_path:
                sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            self.inner, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = module.__spec__.loader = self.inner  # type: ignore[union-attr]
        for part, loaded in self.modules.items():
            setattr(module, part, loaded)
        self.inner.exec_module(module)


def _load() -> tuple[ModuleType, ...]:
    names = [f"{PACKAGE}.types.{part}" for part in _PARTS]
    if PACKAGE in sys.modules or all(n in sys.modules for n in names):
        import google.pubsub_v1.types  # noqa: F401  (the real package, already imported or cheap now)

        return tuple(sys.modules[n] for n in names)
    spec = importlib.util.find_spec(PACKAGE)  # imports only the namespace package `google`
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{PACKAGE} is not installed (google-cloud-pubsub)")
    root = next(iter(spec.submodule_search_locations))
    stand_ins = {PACKAGE: ModuleType(PACKAGE), f"{PACKAGE}.types": ModuleType(f"{PACKAGE}.types")}
    for stand_in in stand_ins.values():
        stand_in.__path__ = []  # a package, so `from google.pubsub_v1.types import schema` resolves
    added: list[str] = []
    try:
        for name, stand_in in stand_ins.items():
            if sys.modules.setdefault(name, stand_in) is stand_in:
                added.append(name)
        for part, name in zip(_PARTS, names, strict=True):
            if name in sys.modules:
                continue
            file_spec = importlib.util.spec_from_file_location(name, f"{root}/types/{part}.py")
            if file_spec is None or file_spec.loader is None:
                raise ImportError(f"cannot load {name} from {root}")
            module = importlib.util.module_from_spec(file_spec)
            sys.modules[name] = module
            try:
                file_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
            setattr(stand_ins[f"{PACKAGE}.types"], part, module)
    finally:
        for name in added:
            if sys.modules.get(name) is stand_ins[name]:
                del sys.modules[name]
    modules = tuple(sys.modules[n] for n in names)
    sys.meta_path.insert(0, _Reattach(dict(zip(_PARTS, modules, strict=True))))
    return modules
