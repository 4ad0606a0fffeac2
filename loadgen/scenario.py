"""Scenario files (YAML): phases of rate, event mix, anomaly rates and drift.

    name: drift
    phases:
      - name: baseline
        duration: 60s          # or count: 10000 (exactly one of them)
        rate: 200              # events/s; omit for as fast as possible
      - name: prices-rise
        duration: 2m
        rate: 200
        drift: {price_factor: 1.6}
        ramp: true             # move linearly from the previous phase's drift

Unset fields fall back to the defaults (anomaly rates are merged per kind).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loadgen.config import (
    DEFAULT_ANOMALY_RATES,
    DEFAULT_MIX,
    ConfigError,
    Drift,
    GeneratorConfig,
    one_line,
)

SCENARIO_DIR = Path(__file__).parent / "scenarios"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: float | int | str) -> float:
    """Seconds from 90, "90s", "1.5m", "2h" or "250ms"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(value))
        if not match:
            raise ValueError(f"not a duration: {value!r} (e.g. 30, 30s, 5m, 1h)")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"must be > 0, got {value!r}")
    return seconds


class Phase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    duration: float | None = None
    count: int | None = Field(None, ge=1)
    rate: float | None = Field(None, gt=0)
    mix: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_MIX))
    anomaly_rates: dict[str, float] = Field(default_factory=dict)
    drift: Drift = Field(default_factory=Drift)
    ramp: bool = False

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float | None:
        return None if value is None else parse_duration(value)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _length(self) -> Phase:
        if (self.duration is None) == (self.count is None):
            raise ValueError("give exactly one of duration or count")
        return self

    def config(self, base: GeneratorConfig, drift: Drift | None = None) -> GeneratorConfig:
        rates = {**DEFAULT_ANOMALY_RATES, **self.anomaly_rates}
        fields = {**base.model_dump(), "mix": self.mix, "anomaly_rates": rates, "drift": drift or self.drift}
        return GeneratorConfig.build(**fields)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    description: str = ""
    seed: int | None = None
    phases: list[Phase] = Field(min_length=1)


def resolve(name_or_path: str) -> Path:
    """A path, or the name of a shipped scenario (loadgen/scenarios/<name>.yaml)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = SCENARIO_DIR / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    names = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
    raise ConfigError(f"--scenario: no file {name_or_path!r} and no shipped scenario of that name ({names})")


def load(name_or_path: str, base: GeneratorConfig | None = None) -> Scenario:
    """Read and validate a scenario; ConfigError names the file and field on any problem."""
    path = resolve(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'phases' list, got {type(raw).__name__}")
    try:
        scenario = Scenario(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {one_line(exc)}") from None
    base = base or GeneratorConfig()
    for i, phase in enumerate(scenario.phases):  # every phase's generator config must be valid too
        try:
            phase.config(base)
        except ConfigError as exc:
            raise ConfigError(f"{path}: phases.{i}.{exc}") from None
    return scenario
