"""Settings of `hyp storage`, from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.common.settings import CommonSettings


class StorageSettings(CommonSettings):
    host: str = Field("127.0.0.1", validation_alias="HYP_STORAGE_HOST")
    port: int = Field(4443, ge=1, le=65535, validation_alias="HYP_STORAGE_PORT")
    # buckets, objects and unfinished resumable uploads live here (docs/storage.md: the layout)
    data_dir: Path = Field(Path(".hyp/storage"), validation_alias="HYP_STORAGE_DATA_DIR")
    # the location reported for a bucket created without one (Cloud Storage's default is US)
    default_location: str = Field("US", min_length=1, validation_alias="HYP_STORAGE_DEFAULT_LOCATION")
