"""Settings of `hyp sql` and `hyp warehouse` (the warehouse folder: HYP_WAREHOUSE_DIR, or --warehouse-dir)."""

from __future__ import annotations

from functools import lru_cache

from services.common.settings import CommonSettings


class WarehouseSettings(CommonSettings):
    pass


@lru_cache
def get_settings() -> WarehouseSettings:
    return WarehouseSettings()  # type: ignore[call-arg]  # values come from the environment
