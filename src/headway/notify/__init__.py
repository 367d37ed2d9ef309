"""Notifications: email, Slack, Discord, HTTP push and SMS, sent as jobs."""

from __future__ import annotations

from headway.notify.core import Notify

__all__ = ["Notify"]
