"""An SMS provider that keeps what it sends (loaded by name, as a real provider would be)."""

from __future__ import annotations

from typing import ClassVar

from headway.notify import NotifySettings, SmsProvider


class ListProvider(SmsProvider):
    sent: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    async def send_sms(self, phone: str, text: str) -> None:
        ListProvider.sent.append((phone, text))
