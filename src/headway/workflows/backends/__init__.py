"""Workflow store backends: memory, SQL (SQLite and PostgreSQL) and Redis."""
