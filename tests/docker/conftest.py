"""The docker tier uses the same fixtures users import (services/testing)."""

pytest_plugins = ["services.testing.fixtures"]
