"""BigQuery's naming rules for datasets, tables and columns (checked before anything is stored)."""

from __future__ import annotations

import re

from services.bigquery.errors import invalid

_DATASET = re.compile(r"[A-Za-z0-9_]{1,1024}")
# letters, marks, numbers, connectors (underscore), dashes and spaces (Python's \w covers L, N and Pc)
_TABLE = re.compile(r"[\w\- ]+")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,299}")
_RESERVED_PREFIXES = ("_TABLE_", "_FILE_", "_PARTITION", "_ROW_TIMESTAMP", "__ROOT__", "_COLIDENTIFIER")
# 6 to 30 lowercase letters, digits and hyphens, a letter first; legacy ids carry a "domain:" prefix
_PROJECT = re.compile(r"(?:[a-z0-9.\-]+:)?[a-z][a-z0-9\-]{4,28}[a-z0-9]")


def check_project(project: str) -> str:
    if not _PROJECT.fullmatch(project):
        raise invalid(f"Invalid project ID '{project}'.")
    return project


def check_dataset(dataset: str) -> str:
    if not _DATASET.fullmatch(dataset):
        raise invalid(
            f'Invalid dataset ID "{dataset}". Dataset IDs must be alphanumeric (plus underscores) '
            "and must be at most 1024 characters long."
        )
    return dataset


def check_table(table: str) -> str:
    if not _TABLE.fullmatch(table) or len(table.encode()) > 1024:
        raise invalid(
            f'Invalid table ID "{table}". Table IDs must be alphanumeric (plus underscores, dashes and spaces) '
            "and must be at most 1024 bytes long."
        )
    return table


def check_column(name: str, location: str) -> str:
    if not _COLUMN.fullmatch(name):
        raise invalid(
            f'Invalid field name "{name}". Fields must contain only letters, numbers, and underscores, '
            "start with a letter or underscore, and be at most 300 characters long.",
            location,
        )
    if name.upper().startswith(_RESERVED_PREFIXES):
        raise invalid(f'Invalid field name "{name}": the prefix is reserved.', location)
    return name
