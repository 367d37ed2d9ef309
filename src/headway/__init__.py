"""headway: the scaling layer for async Python web services."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from headway.capability import Capability
from headway.errors import (
    BackendUnavailableError,
    ConfigError,
    HeadwayError,
    MissingExtraError,
    UnknownBackendError,
)
from headway.hub import Headway, from_request
from headway.settings import Settings, load_settings

try:
    __version__ = version("headway")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "BackendUnavailableError",
    "Capability",
    "ConfigError",
    "Headway",
    "HeadwayError",
    "MissingExtraError",
    "Settings",
    "UnknownBackendError",
    "__version__",
    "from_request",
    "load_settings",
]
