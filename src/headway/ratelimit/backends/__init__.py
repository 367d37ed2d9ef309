"""Rate-limit backends: ``memory://`` (one process) and ``redis://`` (many machines)."""
