"""One way to configure every `hyp` command: flags over the environment over defaults, validated once.

A command's settings are one :class:`~services.common.settings.CommonSettings` subclass (fields with
their ``HYP_*`` names as ``validation_alias``). Its flags are declared by field name; their values
go into the settings' constructor, where pydantic-settings puts them above the environment and the
defaults, and the *merged* result is validated once. Anything wrong becomes one line and exit 2::

    hyp orchestrator: --port: Input should be less than or equal to 65535
    hyp orchestrator: HYP_ORCH_PORT: Input should be a valid integer, unable to parse string as an integer

naming the flag when a flag set the bad value and the environment variable when the environment
did. argparse's own errors (unknown flag, bad choice) are one line too (:class:`Parser`).

How a command uses it::

    from services.common.config import Command, ConfigError
    from services.orchestrator.settings import OrchestratorSettings

    def command() -> Command[OrchestratorSettings]:  # the command line alone: tests parse with it
        cli = Command("orchestrator", OrchestratorSettings, description="...")
        cli.flag("host", help="listen address")           # --host, help ends "(env HYP_ORCH_HOST, default ...)"
        cli.flag("port", help="listen port")              # values stay strings: pydantic checks them
        cli.flag("data_dir", help="run history folder")   # --data-dir
        # a boolean setting: cli.flag("subscribe", "--no-subscribe", action="store_const", const=False)
        cli.parser.add_argument("--no-sensors", action="store_true")  # not a setting: plain argparse
        return cli

    def main(argv: list[str] | None = None) -> int:
        cli = command()
        try:
            args, settings = cli.parse(argv)
        except ConfigError as exc:
            return cli.fail(exc)                           # prints `hyp orchestrator: <name>: <message>`, 2
        ...

A command with its own parser (or Beam's, see services/detector/options.py) declares its flags as
:class:`Flag` values, adds them with :func:`add_flags` and merges with :func:`load`::

    FLAGS = (Flag("mlflow_host", ("--host",), "bind address"), Flag("mlflow_port", ("--port",), "port"))
    add_flags(parser, ModelSettings, FLAGS)
    args = parser.parse_args(argv)
    try:
        settings = load(ModelSettings, values(args, FLAGS), FLAGS)
    except ConfigError as exc:
        return fail("mlflow", exc)

Settings classes accept their field names as well as their environment names
(``OrchestratorSettings(port=8091)``), see ``CommonSettings.__init__``.

A bad value that only shows next to another (a cross-field check in a ``model_validator``) is raised
as :class:`FieldError` naming the field, so the line names that field's flag or variable
(services/detector/settings.py). tests/test_commands.py holds every command to this.

Nothing here (nor in any command) writes ``os.environ``. A process that starts workers hands them its
validated settings object instead: ``hyp endpoint --workers N`` gives uvicorn's worker processes a
picklable factory bound to the parent's settings (``functools.partial(build_checked_app, settings)``),
which each worker calls, so a worker never re-reads the environment or the flags.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Generic, NoReturn, TypeVar, get_args, get_origin

from pydantic import AliasChoices, BaseModel, ValidationError
from pydantic_core import PydanticUndefined

S = TypeVar("S", bound=BaseModel)

EXIT_USAGE = 2  # argparse's status for bad usage: every bad setting exits with it


class ConfigError(ValueError):
    """A bad setting; ``name`` is what the user can fix: a flag (``--port``) or a variable (``HYP_ORCH_PORT``)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name, self.message = name, message


class FieldError(ValueError):
    """Raised by a settings validator about one field (cross-field checks), so the error names that field's
    flag or variable instead of the whole settings."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def fail(command: str, error: ConfigError | str) -> int:
    """Print ``hyp <command>: <error>`` on stderr (one line) and return the exit status 2."""
    print(f"hyp {command}: {error}", file=sys.stderr)
    return EXIT_USAGE


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``hyp x: --port: invalid choice ...``), exit 2."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument "):  # "argument --port: invalid int value: 'x'"
            message = message[len("argument ") :]
        command = " ".join(self.prog.split()[:2])  # `hyp warehouse`, also for its sub-command `compact`
        self.exit(EXIT_USAGE, f"{command}: {message} (--help lists the options)\n")


@dataclass(frozen=True)
class Flag:
    """A flag that sets one settings field. ``names`` default to ``--field-name``; ``kwargs`` go to
    ``add_argument`` (``action``, ``const``, ``choices``, ``metavar``). Values are not converted by
    argparse: the settings validate them."""

    field: str
    names: tuple[str, ...] = ()
    help: str = ""
    kwargs: Mapping[str, Any] = dataclass_field(default_factory=dict)

    @property
    def flags(self) -> tuple[str, ...]:
        return self.names or ("--" + self.field.replace("_", "-"),)

    @property
    def dest(self) -> str:
        return self.flags[0].lstrip("-").replace("-", "_")


def env_names(cls: type[BaseModel], name: str) -> list[str]:
    """The environment variables a settings field reads (its ``validation_alias`` choices), or its name."""
    alias = cls.model_fields[name].validation_alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [c for c in alias.choices if isinstance(c, str)]
    return [name]


def _choices(annotation: Any) -> list[str] | None:
    """The values of a ``Literal[...]`` field (``Literal`` or ``Literal | None``), for argparse's choices."""
    from typing import Literal

    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    for arg in get_args(annotation):
        if get_origin(arg) is Literal:
            return [str(a) for a in get_args(arg)]
    return None


def help_text(cls: type[BaseModel], flag: Flag) -> str:
    """``flag.help`` (or the field's description) plus where else the value comes from and its default."""
    info = cls.model_fields[flag.field]
    text = flag.help or info.description or ""
    where = [f"env {' or '.join(env_names(cls, flag.field))}"]
    if info.default is not PydanticUndefined and info.default is not None and "action" not in flag.kwargs:
        where.append(f"default {info.default}")
    return f"{text} ({', '.join(where)})".replace("%", "%%").strip()


def add_flags(parser: argparse.ArgumentParser, cls: type[BaseModel], flags: Iterable[Flag]) -> None:
    """Add ``flags`` to ``parser`` (any argparse parser, Beam's included); unset flags read as None."""
    for flag in flags:
        kwargs = dict(flag.kwargs)
        if "action" not in kwargs and "choices" not in kwargs:
            choices = _choices(cls.model_fields[flag.field].annotation)
            if choices:
                kwargs["choices"] = choices
        parser.add_argument(*flag.flags, dest=flag.dest, default=None, help=help_text(cls, flag), **kwargs)


def values(args: object, flags: Iterable[Flag]) -> dict[str, Any]:
    """The flags given on the command line (field -> value), from a parsed namespace or Beam options view."""
    out = {}
    for flag in flags:
        value = getattr(args, flag.dest, None)
        if value is not None:
            out[flag.field] = value
    return out


def _env_set(name: str) -> bool:
    lowered = name.lower()
    return any(k.lower() == lowered for k in os.environ)


def _field_of(cls: type[BaseModel], loc: object) -> str | None:
    if loc in cls.model_fields:
        return str(loc)
    for name in cls.model_fields:
        if loc in env_names(cls, name):
            return name
    return None


def where(cls: type[BaseModel], name: str, given: Mapping[str, str], flags: Mapping[str, str] | None = None) -> str:
    """What to name for a bad value of field ``name``: the flag if one set it (``given``: field -> flag), else
    the environment variable if one is set, else the field's flag (``flags``) or its first variable."""
    if name in given:
        return given[name]
    variables = env_names(cls, name)
    set_ = next((v for v in variables if _env_set(v)), None)
    return set_ or (flags or {}).get(name) or variables[0]


def explain(
    cls: type[BaseModel], exc: ValidationError, given: Mapping[str, str], flags: Mapping[str, str] | None = None
) -> ConfigError:
    """The first error of ``exc`` as a ConfigError naming the flag (``given``: field -> flag that was given)
    or the environment variable that set the bad value (see :func:`where`)."""
    err = exc.errors()[0]
    message = err["msg"].removeprefix("Value error, ")
    error = (err.get("ctx") or {}).get("error")
    name = error.field if isinstance(error, FieldError) else _field_of(cls, err["loc"][0] if err["loc"] else None)
    if name is None:
        return ConfigError(".".join(map(str, err["loc"])) or "settings", message)
    return ConfigError(where(cls, name, given, flags), message)


def load(cls: type[S], given: Mapping[str, Any] | None = None, flags: Iterable[Flag] = ()) -> S:
    """``cls`` built from ``given`` (field -> flag value) over the environment over defaults, validated
    together; a ConfigError naming the flag (one of ``flags``) or the variable on bad input."""
    given = dict(given or {})
    names = {f.field: f.flags[0] for f in flags}
    given_names = {k: names.get(k, "--" + k.replace("_", "-")) for k in given}
    try:
        return cls(**{env_names(cls, k)[0]: v for k, v in given.items()})
    except ValidationError as exc:
        raise explain(cls, exc, given_names, names) from None


class Command(Generic[S]):
    """One `hyp <name>` command line bound to its settings class: ``flag()`` declares the flags that set
    settings fields, ``parser`` takes any other option, ``parse()`` returns (args, merged settings)."""

    def __init__(self, name: str, settings: type[S], **parser_kwargs: Any) -> None:
        self.name, self.settings_class = name, settings
        self.parser = Parser(prog=f"hyp {name}", **parser_kwargs)
        self.flags: list[Flag] = []

    def flag(
        self, field: str, *names: str, help: str = "", parser: argparse.ArgumentParser | None = None, **kwargs: Any
    ) -> None:
        """A flag for settings ``field`` (default name ``--field-name``), on ``parser`` (a sub-command's) or
        the command's own."""
        if field not in self.settings_class.model_fields:
            raise KeyError(f"{self.settings_class.__name__} has no field {field!r}")
        declared = Flag(field, tuple(names), help, kwargs)
        add_flags(parser or self.parser, self.settings_class, [declared])
        self.flags.append(declared)

    def parse(self, argv: Sequence[str] | None = None, **given: Any) -> tuple[argparse.Namespace, S]:
        """Parse ``argv`` (usage errors exit 2 with one line) and build the settings: the flags given,
        then ``given`` (field values the command computed from other options), over the environment."""
        args = self.parser.parse_args(argv)
        return args, load(self.settings_class, {**values(args, self.flags), **given}, self.flags)

    def fail(self, error: ConfigError | str) -> int:
        return fail(self.name, error)
