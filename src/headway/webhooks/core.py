"""The ``hw.webhooks`` capability (being built)."""

from __future__ import annotations

from headway.capability import Capability


class Webhooks(Capability):
    """``hw.webhooks``."""

    name = "webhooks"
