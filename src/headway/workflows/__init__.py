"""Workflows: chains, groups and DAGs of jobs, with human approval steps."""

from __future__ import annotations

from headway.workflows.core import Workflows

__all__ = ["Workflows"]
