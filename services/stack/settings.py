"""Settings of `hyp up` / `down` / `status` / `logs` (environment first, flags override)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field

from services.common.settings import CommonSettings


class StackSettings(CommonSettings):
    home: Path = Field(Path(".hyp"), validation_alias="HYP_HOME")  # data root of a local stack
    health_timeout_s: float = Field(120.0, gt=0, validation_alias="HYP_UP_HEALTH_TIMEOUT")
    init_timeout_s: float = Field(600.0, gt=0, validation_alias="HYP_UP_INIT_TIMEOUT")
    stop_timeout_s: float = Field(15.0, gt=0, validation_alias="HYP_UP_STOP_TIMEOUT")
    refresh_s: float = Field(2.0, gt=0, validation_alias="HYP_UP_REFRESH")

    @property
    def run_dir(self) -> Path:
        return self.home / "run"


@lru_cache
def get_settings() -> StackSettings:
    return StackSettings()
