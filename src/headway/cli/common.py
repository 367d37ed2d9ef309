"""What every capability's CLI group shares: run an action inside a started hub.

A usage problem (an unknown name, a value the capability refuses, a backend that says
no) prints one line and exits 2, never a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from headway.errors import HeadwayError

T = TypeVar("T")
err = Console(stderr=True)


def usage_error(message: str) -> NoReturn:
    """Print ``error: message`` (no markup interpreted) and exit 2."""
    err.print(f"[red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(2)


def run_with(
    capability: str,
    action: Callable[[Any], Awaitable[T]],
    *,
    refused: tuple[type[Exception], ...] = (),
) -> T:
    """Build a hub from ``HEADWAY_*``, start it with ``hw.<capability>``, run ``action``.

    ``HeadwayError`` (``HTTPError`` included) and the ``refused`` exception types become a
    usage error.
    """
    from headway import Headway
    from headway.web.errors import HTTPError

    async def main() -> T:
        hw = Headway()
        target = getattr(hw, capability)
        async with hw:
            return await action(target)

    try:
        return asyncio.run(main())
    except HTTPError as exc:
        usage_error(exc.message)
    except HeadwayError as exc:
        usage_error(str(exc))
    except refused as exc:
        usage_error(str(exc))
