"""Fan-out backends: ``memory://``, ``redis://`` and ``postgresql://``."""
