"""The ``hw.events`` capability (being built)."""

from __future__ import annotations

from headway.capability import Capability


class Events(Capability):
    """``hw.events``."""

    name = "events"
