"""Breaker state backends: ``memory://`` (one process) and ``redis://`` (shared)."""
