"""Structured logs: JSON (or console lines in development) with request id, tenant, route.

Every record emitted while a request is served carries its ``request_id``, ``route`` and
``tenant`` (set with :func:`bind_request`). Secrets never reach the output: the formatter
masks bearer tokens, API-key-shaped strings, URL passwords and every configured secret
value, after formatting (message, arguments and traceback alike).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

import orjson

__all__ = [
    "AccessEntry",
    "ConsoleFormatter",
    "JsonFormatter",
    "Redactor",
    "RequestContext",
    "bind_request",
    "current_request",
    "line_handler",
]


@dataclass(slots=True)
class RequestContext:
    """What the logs know about the request being served (mutable: bound as it goes)."""

    request_id: str
    method: str
    path: str
    route: Callable[[], str] | None = None
    fields: dict[str, Any] = field(default_factory=dict)


_CURRENT: ContextVar[RequestContext | None] = ContextVar("headway_request", default=None)


def current_request() -> RequestContext | None:
    return _CURRENT.get()


def bind_request(**fields: Any) -> None:
    """Attach fields (``tenant=...``, ``user=...``) to the current request's log lines."""
    ctx = _CURRENT.get()
    if ctx is not None:
        ctx.fields.update(fields)


# -- redaction ----------------------------------------------------------------------

# (substrings that must occur in the lower-cased text, pattern, replacement): the cheap
# substring test spares the regex on the common line that holds no secret at all.
_PATTERNS = (
    # Authorization: Bearer <token> / Basic <creds>
    (("bearer", "basic"), re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s\"',;]+"), r"\1\2***"),
    # scheme://user:password@host
    (("@",), re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s\"']*:)[^@\s\"']+@"), r"\1***@"),
    # key=value pairs whose name says secret
    (
        ("key", "token", "secret", "pass", "pwd"),
        re.compile(
            r"(?i)\b((?:api[_-]?key|access[_-]?token|token|secret|password|passwd|pwd)"
            r"[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;]+"
        ),
        r"\1***",
    ),
    # API-key-shaped tokens: hw_..., sk_live_..., ghp_..., xoxb-...
    (
        ("hw_", "hw-", "sk_", "sk-", "pk_", "rk_", "ghp_", "gho_", "github_pat", "xox"),
        re.compile(r"\b(hw|sk|pk|rk|ghp|gho|github_pat|xox[abprs])[_-][A-Za-z0-9_\-]{12,}"),
        r"\1_***",
    ),
)


def _trie(words: Iterable[str]) -> str:
    """A regex matching any of ``words``, factored by prefix (``b(?:asic|earer)``), so
    that the scan tests one character class per position instead of every word."""
    tree: dict[str, Any] = {}
    for word in words:
        node = tree
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        if "" in node:  # a word ends here: the shorter match is enough
            return ""
        alts = [re.escape(ch) + emit(node[ch]) for ch in sorted(node)]
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(tree)


# every trigger of every pattern in one scan: the common line holds none of them
_ANY_TRIGGER = re.compile(_trie(t for triggers, _, _ in _PATTERNS for t in triggers))
# no trigger is made of lower-case hex digits alone (JsonFormatter.format_access relies
# on it: a hex request id needs no scan)
assert all(t.strip("0123456789abcdef") for triggers, _, _ in _PATTERNS for t in triggers)


class Redactor:
    """Masks secrets in text: known values first, then secret-shaped patterns."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        known = set(self._secrets)
        known.update(s for s in secrets if s and len(s) >= 4)
        self._secrets = sorted(known, key=len, reverse=True)  # longest first

    def __call__(self, text: str, probe: str | None = None) -> str:
        """``text`` with its secrets masked. ``probe``: a part of ``text`` known to hold
        every trigger substring that ``text`` holds (the rest is known to be clean), so
        that the common clean line is scanned in part only."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
                probe = None
        if _ANY_TRIGGER.search((text if probe is None else probe).lower()) is None:
            return text
        lowered = text.lower()
        for triggers, pattern, repl in _PATTERNS:
            if any(t in lowered for t in triggers):
                text = pattern.sub(repl, text)
        return text


# -- formatters ---------------------------------------------------------------------

_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


def _context(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ctx = _CURRENT.get()
    if ctx is not None:
        out["request_id"] = ctx.request_id
        if ctx.route is not None:
            out["route"] = ctx.route()
        out.update(ctx.fields)
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            out[key] = value
    return out


class AccessEntry(NamedTuple):
    """One access-log line, kept as its fields until the handler writes it."""

    created: float
    levelno: int
    logger: str
    method: str
    path: str
    status: int
    ms: float
    size: int
    ctx: RequestContext
    route: str
    fields: dict[str, Any] | None  # a copy of ctx.fields at the end of the request

    def message(self) -> str:
        return f"{self.method} {self.path} {self.status:d} {self.ms:.1f}ms"

    def extra(self) -> dict[str, Any]:
        return {"status": self.status, "duration_ms": round(self.ms, 2), "bytes": self.size}

    def context(self) -> dict[str, Any]:
        """The fields :func:`_context` adds to the record: request context, extras."""
        out: dict[str, Any] = {"request_id": self.ctx.request_id}
        if self.ctx.route is not None:
            out["route"] = self.route
        if self.fields:
            out.update(self.fields)
        out["status"] = self.status
        out["duration_ms"] = round(self.ms, 2)
        out["bytes"] = self.size
        return out

    def record(self) -> logging.LogRecord:
        """The LogRecord ``logger.log(...)`` would have made of this line."""
        record = logging.LogRecord(
            self.logger,
            self.levelno,
            __file__,
            0,
            "%s %s %d %.1fms",
            (self.method, self.path, self.status, self.ms),
            None,
        )
        record.created = self.created
        record.msecs = _msecs(self.created)
        record.__dict__.update(self.extra())
        return record


def _msecs(created: float) -> float:
    return int((created - int(created)) * 1000) + 0.0  # as logging.LogRecord computes it


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# request ids JSON writes as they are (no escape): generated hex ids, and every incoming
# id the middleware accepts
_PLAIN_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}").fullmatch
_HEX = "0123456789abcdef"


# route template -> (its JSON string, whether it holds no trigger); the same for the
# start of an access line's message, "METHOD path " (by method and path)
_ROUTES: dict[Any, tuple[str, bool]] = {}
_MESSAGES: dict[Any, tuple[str, bool]] = {}


def _json_part(cache: dict[Any, tuple[str, bool]], key: Any, value: str = "") -> tuple[str, bool]:
    """``key``'s JSON string (or ``value`` when given), remembered in ``cache``."""
    value = value or _json(key)
    found = (value, _ANY_TRIGGER.search(value.lower()) is None)
    if len(cache) < 4096:
        cache[key] = found
    return found


def _message_part(entry: AccessEntry) -> tuple[str, bool]:
    head = _json(f"{entry.method} {entry.path} ")[:-1]  # without its closing quote
    return _json_part(_MESSAGES, (entry.method, entry.path), head)


def _access_head(entry: AccessEntry) -> tuple[str, bool]:
    """``"level":...,"logger":...`` of an access line, and whether the line's fixed part
    (keys, level, logger, with numbers and a time stamp in place) holds no trigger."""
    level = f'"level":{_json(logging.getLevelName(entry.levelno))},"logger":{_json(entry.logger)}'
    skeleton = (
        f'{{"ts":"2000-01-01T00:00:00.000Z",{level},"msg":"","request_id":"","route":"",'
        '"status":200,"duration_ms":0.0,"bytes":0}'
    )
    return level, _ANY_TRIGGER.search(skeleton.lower()) is None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request context, extras, exc."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redact = redactor or Redactor()
        self._second = -1
        self._stamp = ""
        self._heads: dict[tuple[int, str], tuple[str, bool]] = {}
        self._templates: dict[tuple[Any, ...], tuple[str, bool]] = {}

    def _ts(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self._ts(record.created, record.msecs),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(_context(record))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc"] = record.exc_text
        line = orjson.dumps(data, default=str).decode()
        return self.redact(line)

    def format_access(self, entry: AccessEntry) -> str:
        """Exactly what :meth:`format` makes of the record of ``entry``."""
        ctx = entry.ctx
        if entry.fields or ctx.route is None or type(entry.status) is not int:
            return self._format_access_dict(entry)
        if type(entry.size) is not int or not isinstance(self.redact, Redactor):
            return self._format_access_dict(entry)
        rid, ms, created = ctx.request_id, entry.ms, entry.created
        if type(ms) is not float or not 0.0 <= ms < 1e9:
            return self._format_access_slow(entry)
        # a hex id (every generated one) is plain JSON and holds no trigger (each trigger
        # has a letter past "f", an "@" or a "-"); any other id is checked
        hex_id = 0 < len(rid) <= 128 and not rid.strip(_HEX)
        if not hex_id and not _PLAIN_ID(rid):
            return self._format_access_slow(entry)
        key = (entry.levelno, entry.logger, entry.method, entry.path, entry.status, entry.route)
        template = self._templates.get(key) or self._template(key, entry)
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        # the numbers as the slow path writes them: %.1f as f"{:.1f}"; orjson writes
        # round(ms, 2) below 1e9 as .2f without its trailing zeros (both are correctly
        # rounded, and 11 digits are the shortest round trip)
        hundredths = f"{ms:.2f}".rstrip("0")
        if hundredths[-1] == ".":
            hundredths += "0"
        line = template[0] % (
            self._stamp,
            int((created - second) * 1000),
            ms,
            rid,
            hundredths,
            entry.size,
        )
        if template[1]:  # the fixed parts hold no trigger: only the id may
            return self.redact(line, "" if hex_id else rid)
        return self.redact(line)

    def _template(self, key: tuple[Any, ...], entry: AccessEntry) -> tuple[str, bool]:
        """The %-template of the access lines of ``key`` (everything but the time, the
        duration, the request id and the size), and whether its text holds no trigger."""
        level, clean = _access_head(entry)
        route, route_clean = _ROUTES.get(entry.route) or _json_part(_ROUTES, entry.route)
        msg, msg_clean = _MESSAGES.get((entry.method, entry.path)) or _message_part(entry)
        head = f'{level},"msg":{msg}{entry.status:d} '.replace("%", "%%")
        tail = f'","route":{route},"status":{entry.status},"duration_ms":'.replace("%", "%%")
        template = (
            f'{{"ts":"%s.%03dZ",{head}%.1fms","request_id":"%s{tail}%s,"bytes":%d}}',
            clean and msg_clean and route_clean,
        )
        if len(self._templates) < 4096:
            self._templates[key] = template
        return template

    def _format_access_slow(self, entry: AccessEntry) -> str:
        """:meth:`format_access` of an entry whose id needs JSON escaping or whose
        duration is out of the plain float range."""
        ctx = entry.ctx
        head = self._heads.get((entry.levelno, entry.logger))
        if head is None:
            head = self._heads[(entry.levelno, entry.logger)] = _access_head(entry)
        level, clean = head
        route, route_clean = _ROUTES.get(entry.route) or _json_part(_ROUTES, entry.route)
        # the message's JSON up to its status (open): the rest, numbers, holds no trigger
        msg, msg_clean = _MESSAGES.get((entry.method, entry.path)) or _message_part(entry)
        rid = _json(ctx.request_id)
        line = (
            f'{{"ts":"{self._ts(entry.created, _msecs(entry.created))}",{level},'
            f'"msg":{msg}{entry.status:d} {entry.ms:.1f}ms","request_id":{rid},'
            f'"route":{route},"status":{entry.status},'
            f'"duration_ms":{_json(round(entry.ms, 2))},"bytes":{entry.size}}}'
        )
        # the keys, level, logger and numbers hold no trigger (checked in _access_head):
        # the strings do, if anything; quotes keep them apart
        if not clean:
            return self.redact(line)
        return self.redact(line, rid if msg_clean and route_clean else f"{msg}{rid}{route}")

    def _format_access_dict(self, entry: AccessEntry) -> str:
        data: dict[str, Any] = {
            "ts": self._ts(entry.created, _msecs(entry.created)),
            "level": logging.getLevelName(entry.levelno),
            "logger": entry.logger,
            "msg": entry.message(),
        }
        data.update(entry.context())
        return self.redact(orjson.dumps(data, default=str).decode())


class ConsoleFormatter(logging.Formatter):
    """``12:00:01 INFO  headway.access  GET /x 200 1.2ms  request_id=... tenant=...``."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s  %(message)s", "%H:%M:%S")
        self.redact = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{k}={v}" for k, v in _context(record).items())
        return self.redact(f"{line}  {extra}" if extra else line)

    def format_access(self, entry: AccessEntry) -> str:
        """Exactly what :meth:`format` makes of the record of ``entry``."""
        stamp = time.strftime("%H:%M:%S", self.converter(entry.created))
        level = logging.getLevelName(entry.levelno)
        line = f"{stamp} {level:<7} {entry.logger}  {entry.message()}"
        extra = " ".join(f"{k}={v}" for k, v in entry.context().items())
        return self.redact(f"{line}  {extra}" if extra else line)


# -- configuration ------------------------------------------------------------------

_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")
_FORMATTERS = (JsonFormatter, ConsoleFormatter)


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stream handler of :class:`LogSetup`; also takes access-log entries.

    Entries (:meth:`write_access`) are queued and formatted and written together once
    per turn of the event loop, by this handler's formatter, as the records logging
    would have made of them. A record emitted the usual way writes the queued entries
    first, so the output keeps the order of the calls.
    """

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self._pending: list[AccessEntry] = []
        self._scheduled = False

    def write_access(self, entry: AccessEntry) -> None:
        self._pending.append(entry)
        if not self._scheduled:
            self.schedule()

    def schedule(self) -> None:
        """Write the queued entries at the end of this turn of the event loop (now when
        there is no loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: write now
            self.flush_lines()
            return
        self._scheduled = True
        loop.call_soon(self.flush_lines)

    def flush_lines(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        with self.lock or contextlib.nullcontext():
            pending, self._pending = self._pending, []
            lines = self._format_all(pending)
            if not lines:
                return
            try:
                self.stream.write(self.terminator.join(lines) + self.terminator)
                self.stream.flush()
            except Exception:
                self.handleError(pending[-1].record())

    def _format_all(self, pending: list[AccessEntry]) -> list[str]:
        formatter = self.formatter
        if isinstance(formatter, _FORMATTERS):
            try:  # the common case: one call per line
                return [formatter.format_access(entry) for entry in pending]
            except Exception:  # noqa: S110 - line by line below, each error reported
                pass
        return [line for line in map(self._format_entry, pending) if line is not None]

    def _format_entry(self, entry: AccessEntry) -> str | None:
        formatter = self.formatter
        try:
            if isinstance(formatter, _FORMATTERS):
                return formatter.format_access(entry)
            token = _CURRENT.set(  # a formatter set since: it reads the request context
                RequestContext(
                    entry.ctx.request_id,
                    entry.method,
                    entry.path,
                    None if entry.ctx.route is None else (lambda: entry.route),
                    dict(entry.fields or {}),
                )
            )
            try:
                return self.format(entry.record())
            finally:
                _CURRENT.reset(token)
        except Exception:  # as Handler.emit does: report the record, never raise
            self.handleError(entry.record())
            return None

    def emit(self, record: logging.LogRecord) -> None:
        if self._pending:
            self.flush_lines()
        super().emit(record)

    def flush(self) -> None:
        if self._pending:
            self.flush_lines()
        super().flush()


_ACTIVE: LogSetup | None = None  # the installed setup, whose handler takes access lines


def line_handler(logger: logging.Logger, levelno: int) -> LineHandler | None:
    """The handler a record of ``logger`` at ``levelno`` would reach, when it is the only
    one and ours (so that a preformatted line is exactly what logging would write);
    None otherwise (another handler, a filter, a foreign formatter: use logging).

    A handler found is remembered until its queued lines are written (the end of the
    loop turn): the requests of one turn ask once, not once each."""
    found = _LINE_CACHE.get((logger, levelno))
    if found is not None and found._pending:
        return found
    found = _line_handler(logger, levelno)
    if found is not None:
        _LINE_CACHE[(logger, levelno)] = found
    return found


_LINE_CACHE: dict[tuple[logging.Logger, int], LineHandler] = {}


def _line_handler(logger: logging.Logger, levelno: int) -> LineHandler | None:
    setup = _ACTIVE
    if setup is None or logger.filters or logger.disabled:
        return None
    handler = setup.handler
    root = logging.root
    handlers = root.handlers
    if len(handlers) != 1 or handlers[0] is not handler or handler is None:
        return None
    if handler.filters or levelno < handler.level or handler.formatter is not setup.formatter:
        return None
    node: logging.Logger | None = logger
    while node is not None and node is not root:
        if node.handlers or not node.propagate:
            return None
        node = node.parent
    return handler


class LogSetup:
    """Installs one handler on the root logger (and routes uvicorn's loggers to it);
    :meth:`uninstall` puts everything back as it was."""

    def __init__(self, formatter: logging.Formatter, level: str, access_log: bool) -> None:
        self.formatter = formatter
        self.level = level
        self.access_log = access_log
        self.handler: LineHandler | None = None
        self._saved: list[tuple[logging.Logger, list[logging.Handler], bool, int]] = []
        self._root_level = logging.WARNING

    def install(self, stream: IO[str] | None = None) -> None:
        global _ACTIVE
        root = logging.getLogger()
        self.handler = LineHandler(stream or sys.stdout)  # 12-factor: logs on stdout
        self.handler.setFormatter(self.formatter)
        _LINE_CACHE.clear()
        if isinstance(self.formatter, _FORMATTERS):
            _ACTIVE = self
        self._root_level = root.level
        root.addHandler(self.handler)
        root.setLevel(self.level)
        for name in _UVICORN:
            logger = logging.getLogger(name)
            self._saved.append((logger, list(logger.handlers), logger.propagate, logger.level))
            logger.handlers = []
            logger.propagate = True
        if self.access_log:  # ours replaces uvicorn's (which logs query strings)
            logging.getLogger("uvicorn.access").setLevel(logging.WARNING)

    def uninstall(self) -> None:
        global _ACTIVE
        _LINE_CACHE.clear()
        if _ACTIVE is self:
            _ACTIVE = None
        root = logging.getLogger()
        if self.handler is not None:
            self.handler.flush_lines()  # the queued access lines (never raises)
            root.removeHandler(self.handler)
            self.handler = None
            root.setLevel(self._root_level)
        for logger, handlers, propagate, level in reversed(self._saved):
            logger.handlers = handlers
            logger.propagate = propagate
            logger.setLevel(level)
        self._saved.clear()


def set_current(ctx: RequestContext | None) -> Any:
    return _CURRENT.set(ctx)


def reset_current(token: Any) -> None:
    _CURRENT.reset(token)
