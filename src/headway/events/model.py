"""Domain events: what an event is, its name, its channels and its JSON form.

An event is a pydantic model (subclass :class:`Event`) or a dataclass. Its JSON form is
encoded once, at dispatch, so a value that is not JSON fails there, at the caller's
line, with :class:`EventError` — never later in a listener or a worker.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from headway.errors import HeadwayError
from headway.events.base import CHANNEL

NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_KNOWN: dict[str, type] = {}  # event name -> class (for queued listeners' workers)


class EventError(HeadwayError, TypeError):
    """An event that cannot be dispatched: not an event, not JSON, too large, bad channel."""


class Event(BaseModel):
    """Base class of typed events (pydantic). Override :meth:`channels` to broadcast::

    class PostPublished(Event):
        tenant_id: int
        post_id: int

        def channels(self) -> list[str]:
            return [f"tenant.{self.tenant_id}", f"post.{self.post_id}"]
    """

    model_config = ConfigDict(frozen=True)
    event_name: ClassVar[str] = ""  # default: the class name

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        register_event(cls)

    def channels(self) -> Sequence[str]:
        """Realtime channels this event is published to; empty = not broadcast."""
        return ()


def event_name(cls: type) -> str:
    name = getattr(cls, "event_name", "") or cls.__name__
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise EventError(f"invalid event name {name!r}: use 1-100 of A-Z a-z 0-9 _ . : -")
    return name


def register_event(cls: type) -> str:
    """Make ``cls`` known by name (automatic for :class:`Event` subclasses)."""
    if not (issubclass(cls, BaseModel) or dataclasses.is_dataclass(cls)):
        raise EventError(f"{cls.__name__} is not an event: use an Event subclass or a dataclass")
    name = event_name(cls)
    known = _KNOWN.get(name)
    if known is not None and known is not cls and _path(known) != _path(cls):
        raise EventError(
            f"two event classes are named {name!r} ({_path(known)} and {_path(cls)}); "
            "give one an `event_name`"
        )
    _KNOWN[name] = cls
    return name


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def known_event(name: str) -> type | None:
    return _KNOWN.get(name)


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(cls: type) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


@dataclass(frozen=True, slots=True)
class Prepared:
    """An event checked and encoded at dispatch."""

    event: Any
    name: str
    data: bytes
    channels: tuple[str, ...]


def prepare(event: Any, max_payload: int) -> Prepared:
    """Check and encode ``event``; every problem raises :class:`EventError` here."""
    cls = type(event)
    if not (isinstance(event, BaseModel) or dataclasses.is_dataclass(event)) or isinstance(
        event, type
    ):
        raise EventError(f"{cls.__name__} is not an event: use an Event subclass or a dataclass")
    name = event_name(cls) if cls in _KNOWN.values() else register_event(cls)
    data = encode(event)
    if len(data) > max_payload:
        raise EventError(
            f"{name} is {len(data)} bytes encoded, above HEADWAY_EVENTS_MAX_PAYLOAD "
            f"({max_payload}); send an id and let clients fetch the rest"
        )
    return Prepared(event, name, data, check_channels(event))


def encode(event: Any) -> bytes:
    try:
        if isinstance(event, BaseModel):
            return orjson.dumps(event.model_dump(mode="json"))
        return orjson.dumps(_adapter(type(event)).dump_python(event, mode="json"))
    except (TypeError, ValueError) as exc:  # pydantic's serialization error is a ValueError
        raise EventError(f"{type(event).__name__} is not JSON-serialisable: {exc}") from None


def decode(cls: type, data: Any) -> Any:
    """The event of class ``cls`` from its JSON form (a dict or bytes)."""
    if isinstance(data, bytes | str):
        data = orjson.loads(data)
    try:
        if issubclass(cls, BaseModel):
            return cls.model_validate(data)
        return _adapter(cls).validate_python(data)
    except ValidationError as exc:
        raise EventError(f"cannot read a {cls.__name__} event: {exc}") from None


def check_channels(event: Any) -> tuple[str, ...]:
    method = getattr(event, "channels", None)
    if method is None:
        return ()
    channels = method() if callable(method) else method
    if isinstance(channels, str):
        channels = (channels,)
    out = tuple(channels or ())
    for channel in out:
        if not isinstance(channel, str) or not CHANNEL.fullmatch(channel):
            raise EventError(
                f"{type(event).__name__}.channels() gave {channel!r}: a channel is 1-100 of "
                "A-Z a-z 0-9 _ . : -"
            )
    return out
