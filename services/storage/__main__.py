"""`hyp storage`: Cloud Storage's JSON API on a local folder (port 4443), for STORAGE_EMULATOR_HOST clients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.common.config import Command
    from services.storage.settings import StorageSettings


def command() -> Command[StorageSettings]:
    from services.common.config import Command
    from services.storage.settings import StorageSettings

    cli = Command(
        "storage",
        StorageSettings,
        description="Serve Cloud Storage's JSON API (buckets, objects, uploads, downloads) over a local folder; "
        "point google-cloud-storage at it with STORAGE_EMULATOR_HOST=http://127.0.0.1:PORT.",
    )
    cli.flag("host", help="bind address")
    cli.flag("port", help="port")
    cli.flag("data_dir", help="folder holding the buckets and objects")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    from services.common.serve import run_server
    from services.storage.app import create_app

    return run_server(command(), argv, create_app)


if __name__ == "__main__":
    raise SystemExit(main())
