"""Jinja2 templates of the notifications: ``<event>.subject.txt``, ``<event>.txt``,
``<event>.html`` (autoescaped), falling back to ``default.*`` for an event without its own.

Packaged templates live in ``headway/notify/templates``; ``HEADWAY_NOTIFY_TEMPLATES_DIR``
is searched first, so a service overrides or adds templates without touching headway.
"""

from __future__ import annotations

from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from headway.notify.models import Rendered


class Templates:
    def __init__(self, directory: str = "") -> None:
        loaders: list[Any] = [FileSystemLoader(directory)] if directory else []
        loaders.append(PackageLoader("headway.notify", "templates"))
        self.env: Environment = SandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def _render(self, event: str, suffix: str, context: dict[str, Any]) -> str:
        try:
            template = self.env.get_template(f"{event}.{suffix}")
        except TemplateNotFound:
            template = self.env.get_template(f"default.{suffix}")
        return template.render(**context)

    def render(self, event: str, context: dict[str, Any]) -> Rendered:
        items = [(str(k), v) for k, v in sorted(context.items()) if not str(k).startswith("_")]
        data = {**context, "event": event, "context_items": items}
        subject = " ".join(self._render(event, "subject.txt", data).split())[:200]
        data["subject"] = subject
        return Rendered(
            event=event,
            subject=subject,
            text=self._render(event, "txt", data),
            html=self._render(event, "html", data),
            context=context,
        )
