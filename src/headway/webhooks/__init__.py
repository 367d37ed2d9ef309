"""Outgoing webhooks to tenants' endpoints, signed per the Standard Webhooks spec."""

from __future__ import annotations

from headway.webhooks.core import Webhooks

__all__ = ["Webhooks"]
