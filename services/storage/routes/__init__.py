"""The HTTP surface: the JSON API (``/storage/v1``), uploads (``/upload/storage/v1``) and downloads
(``/download/storage/v1``), the paths google-cloud-storage builds from ``STORAGE_EMULATOR_HOST``."""
