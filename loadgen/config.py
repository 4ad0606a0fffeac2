"""What to generate: event mix, anomaly rates, drift, clock. Validated, with one-line errors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

EVENT_TYPES = ("view_item", "add_to_cart", "purchase")

# Anomaly kinds, in label order (docs/loadgen.md defines each one).
ANOMALY_KINDS = ("value_spike", "value_mismatch", "tax_mismatch", "shipping_outlier", "nonpositive_amount", "burst")
# Share of purchases per kind; 1% of purchases in all.
DEFAULT_ANOMALY_RATES: dict[str, float] = {
    "value_spike": 0.002,
    "value_mismatch": 0.002,
    "tax_mismatch": 0.0015,
    "shipping_outlier": 0.0015,
    "nonpositive_amount": 0.001,
    "burst": 0.002,
}
# Our own funnel (not the workshop's: its generator draws the three event types about a third each):
# 60 % views, 25 % carts, 15 % purchases. `--mix` sets another, e.g. view_item=1,add_to_cart=1,purchase=1.
DEFAULT_MIX: dict[str, float] = {"view_item": 0.60, "add_to_cart": 0.25, "purchase": 0.15}

Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class ConfigError(ValueError):
    """A bad option or scenario file; the message is one line naming the field."""


def one_line(exc: ValidationError, prefix: str = "") -> str:
    """The first pydantic error as ``field.path: message``."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
    where = ".".join(p for p in (prefix, loc) if p)
    msg = err["msg"].removeprefix("Value error, ")
    extra = f" (got {err['input']!r})" if err["type"] not in {"missing", "value_error"} and "input" in err else ""
    return f"{where or 'config'}: {msg}{extra}".replace("\n", " ")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Drift(_Model):
    """Shifts of the normal distribution (never labelled): 1.0 / defaults mean no drift."""

    price_factor: float = Field(1.0, gt=0.0, le=100.0, description="multiplies every catalogue price")
    basket_factor: float = Field(1.0, ge=0.0, le=10.0, description="multiplies the mean number of extra lines")
    shipping_factor: float = Field(1.0, ge=0.0, le=10.0, description="multiplies normal shipping")
    coupon_rate: Rate = Field(0.15, description="share of purchases with a coupon")

    def lerp(self, other: Drift, t: float) -> Drift:
        """The drift ``t`` (0..1) of the way from this one to ``other``."""
        t = min(max(t, 0.0), 1.0)
        return Drift(**{k: (1 - t) * getattr(self, k) + t * getattr(other, k) for k in Drift.model_fields})


class GeneratorConfig(_Model):
    mix: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_MIX))
    anomaly_rates: dict[str, Rate] = Field(default_factory=lambda: dict(DEFAULT_ANOMALY_RATES))
    drift: Drift = Field(default_factory=Drift)
    n_users: int = Field(20_000, ge=1, le=10_000_000)
    burst_size: tuple[int, int] = (5, 15)
    clock: str = Field("real", description="'real' (wall clock at render time) or 'simulated'")
    start: datetime = Field(datetime(2026, 11, 1), description="first timestamp of the simulated clock (UTC)")
    sim_rate: float = Field(100.0, gt=0.0, description="events per second of the simulated clock")
    run_id: str = ""

    @field_validator("mix")
    @classmethod
    def _mix(cls, mix: dict[str, float]) -> dict[str, float]:
        for name, share in mix.items():
            if name not in EVENT_TYPES:
                raise ValueError(f"unknown event type {name!r} (expected {', '.join(EVENT_TYPES)})")
            if not share >= 0:
                raise ValueError(f"{name}: share must be >= 0, got {share}")
        if sum(mix.values()) <= 0:
            raise ValueError("shares must not all be 0")
        return mix

    @field_validator("anomaly_rates")
    @classmethod
    def _rates(cls, rates: dict[str, float]) -> dict[str, float]:
        unknown = [k for k in rates if k not in ANOMALY_KINDS]
        if unknown:
            raise ValueError(f"unknown anomaly kind {unknown[0]!r} (expected {', '.join(ANOMALY_KINDS)})")
        if sum(rates.values()) > 0.5:
            raise ValueError(f"rates add up to {sum(rates.values()):g}; at most 0.5 of purchases can be anomalies")
        return {k: float(rates.get(k, 0.0)) for k in ANOMALY_KINDS}

    @field_validator("clock")
    @classmethod
    def _clock(cls, clock: str) -> str:
        if clock not in {"real", "simulated"}:
            raise ValueError(f"expected 'real' or 'simulated', got {clock!r}")
        return clock

    @model_validator(mode="after")
    def _burst(self) -> GeneratorConfig:
        lo, hi = self.burst_size
        if not 1 <= lo <= hi <= 1000:
            raise ValueError(f"burst_size: expected 1 <= low <= high <= 1000, got {self.burst_size}")
        return self

    @property
    def mix_probabilities(self) -> list[float]:
        total = sum(self.mix.values())
        return [self.mix.get(t, 0.0) / total for t in EVENT_TYPES]

    @classmethod
    def build(cls, prefix: str = "", /, **fields: object) -> GeneratorConfig:
        """Validate, raising ConfigError with one line naming the field."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise ConfigError(one_line(exc, prefix)) from None
