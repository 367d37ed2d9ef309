"""Typed exceptions shared by every capability.

Each one carries a message meant for a person: the CLI prints it as is and exits 2,
the web layer turns it into the JSON error shape.
"""

from __future__ import annotations


class HeadwayError(Exception):
    """Base class of every error headway raises on purpose."""


class ConfigError(HeadwayError):
    """A setting is invalid; the message names the variable and the accepted forms."""


class UnknownBackendError(HeadwayError):
    """A URL's scheme matches no registered backend; the message lists the known ones."""


class MissingExtraError(HeadwayError, ImportError):
    """A backend needs an optional dependency that is not installed."""


class BackendUnavailableError(HeadwayError):
    """A backend server (Redis, PostgreSQL, ...) could not be reached."""
