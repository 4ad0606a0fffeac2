"""The one error type of the models package: bad input, named precisely."""

from __future__ import annotations


class ModelInputError(ValueError):
    """Input a model cannot use (missing column, NaN, too few rows, unknown model); the message says which."""
