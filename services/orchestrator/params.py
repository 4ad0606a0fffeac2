"""Parameters of one run: validated the same way for POST /runs, the sensors and the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ResolvedParams(TypedDict):
    """A run's parameters with every default filled in, as the run record keeps them."""

    candidates: list[str]
    window_minutes: float
    max_rows: int
    holdout_fraction: float
    since: str | None  # an event time, "YYYY-MM-DD HH:MM:SS[.ffffff]", no time zone
    promote: bool
    reason: str | None


class RunParams(BaseModel):
    """What a run trains on and with; every field defaults from the orchestrator's settings."""

    model_config = ConfigDict(extra="forbid")

    candidates: list[str] | None = Field(None, min_length=1, description="candidate model kinds to train")
    window_minutes: float | None = Field(None, gt=0, le=7 * 24 * 60, description="training window length (minutes)")
    max_rows: int | None = Field(None, gt=0, le=1_000_000, description="newest purchases of the window used at most")
    holdout_fraction: float | None = Field(None, gt=0, lt=1, description="newest share of the window held out")
    since: datetime | None = Field(None, description="the window starts no earlier than this event time")
    promote: bool = Field(True, description="false: train, evaluate and gate, but never move @champion")
    reason: str | None = Field(None, max_length=500, description="free text recorded with the run")

    @field_validator("candidates")
    @classmethod
    def _no_blank(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if any(not c.strip() for c in value):
                raise ValueError("a candidate name is empty")
            if len(set(value)) != len(value):
                raise ValueError("candidates repeat")
        return value

    def resolved(self, settings: Any, known: list[str]) -> ResolvedParams:  # settings: OrchestratorSettings
        """Fill defaults from settings; raise ValueError naming the field for unknown candidates."""
        candidates = self.candidates or list(settings.candidates)
        unknown = [c for c in candidates if c not in known]
        if unknown:
            raise ValueError(f"candidates: unknown {', '.join(map(repr, unknown))} (known: {', '.join(known)})")
        return {
            "candidates": candidates,
            "window_minutes": self.window_minutes or settings.window_minutes,
            "max_rows": self.max_rows or settings.max_rows,
            "holdout_fraction": self.holdout_fraction or settings.holdout_fraction,
            "since": self.since.replace(tzinfo=None).isoformat(sep=" ") if self.since else None,
            "promote": self.promote,
            "reason": self.reason,
        }
