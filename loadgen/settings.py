"""Settings of `hyp loadgen`, from the environment (flags override)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from services.common.settings import EVENTS_TOPIC, CommonSettings


class LoadgenSettings(CommonSettings):
    to: str = Field("pubsub", validation_alias="HYP_LOADGEN_TO")
    topic: str = Field(EVENTS_TOPIC, validation_alias="HYP_LOADGEN_TOPIC")
    rate: float | None = Field(None, gt=0, validation_alias="HYP_LOADGEN_RATE")
    seed: int | None = Field(None, validation_alias="HYP_LOADGEN_SEED")
    scenario: str | None = Field(None, validation_alias="HYP_LOADGEN_SCENARIO")
    out: str | None = Field(None, validation_alias="HYP_LOADGEN_OUT")
    url: str | None = Field(None, validation_alias="HYP_LOADGEN_URL")
    kafka_bootstrap: str | None = Field(None, validation_alias="HYP_KAFKA_BOOTSTRAP")
    kafka_topic: str = Field(EVENTS_TOPIC, validation_alias="HYP_KAFKA_TOPIC")
    users: int = Field(20_000, gt=0, validation_alias="HYP_LOADGEN_USERS")


@lru_cache
def get_settings() -> LoadgenSettings:
    return LoadgenSettings()
