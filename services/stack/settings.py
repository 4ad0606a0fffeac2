"""Settings of `hyp up` / `down` / `status` / `logs` / `images` (environment first, flags override)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field

from services.common.settings import CommonSettings
from services.stack import definition as d
from services.stack.supervise import Policy


class StackSettings(CommonSettings):
    home: Path = Field(Path(".hyp"), validation_alias="HYP_HOME")  # data root of a local stack
    health_timeout_s: float = Field(120.0, gt=0, validation_alias="HYP_UP_HEALTH_TIMEOUT")
    init_timeout_s: float = Field(600.0, gt=0, validation_alias="HYP_UP_INIT_TIMEOUT")
    stop_timeout_s: float = Field(15.0, gt=0, validation_alias="HYP_UP_STOP_TIMEOUT")
    refresh_s: float = Field(2.0, gt=0, validation_alias="HYP_UP_REFRESH")
    # every port of a local stack moved by this much (a second stack, or a test's, beside one on the defaults)
    port_offset: int = Field(0, ge=0, le=50000, validation_alias="HYP_UP_PORT_OFFSET")
    # detector processes on its one subscription (services/stack/definition.py scale): detector-0, detector-1 ...
    # (HYP_DETECTOR_WORKERS: the name compose's replicas read too)
    detector_workers: int = Field(
        1,
        ge=1,
        le=d.MAX_DETECTOR_WORKERS,
        validation_alias=AliasChoices("HYP_UP_DETECTOR_WORKERS", "HYP_DETECTOR_WORKERS"),
    )
    # supervision (services/stack/supervise.py): first restart after this many seconds, doubling up to 30 s;
    # a service that exits restart_max times within restart_window_s is left down (0: never restarted)
    restart_backoff_s: float = Field(1.0, ge=0, validation_alias="HYP_UP_RESTART_BACKOFF")
    restart_max: int = Field(5, ge=0, validation_alias="HYP_UP_RESTART_MAX")
    restart_window_s: float = Field(120.0, gt=0, validation_alias="HYP_UP_RESTART_WINDOW")

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def restart_policy(self) -> Policy:
        return Policy(
            backoff_s=self.restart_backoff_s,
            max_backoff_s=max(30.0, self.restart_backoff_s),
            max_failures=self.restart_max,
            window_s=self.restart_window_s,
        )


class ImagesSettings(CommonSettings):
    """`hyp images`: the base images (the names compose/Dockerfile's build arguments and compose use)."""

    base_image: str = Field(d.TUNABLES["BASE_IMAGE"], min_length=1, validation_alias="BASE_IMAGE")
    cuda_base_image: str = Field(d.CUDA_BASE_IMAGE, min_length=1, validation_alias="CUDA_BASE_IMAGE")


@lru_cache
def get_settings() -> StackSettings:
    return StackSettings()
