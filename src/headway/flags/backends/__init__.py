"""Flag stores: ``memory://`` (tests, one process) and SQL (SQLite, PostgreSQL)."""
