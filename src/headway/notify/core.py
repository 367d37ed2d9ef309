"""The ``hw.notify`` capability (being built)."""

from __future__ import annotations

from headway.capability import Capability


class Notify(Capability):
    """``hw.notify``."""

    name = "notify"
