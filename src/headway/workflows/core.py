"""The ``hw.workflows`` capability (being built)."""

from __future__ import annotations

from headway.capability import Capability


class Workflows(Capability):
    """``hw.workflows``."""

    name = "workflows"
