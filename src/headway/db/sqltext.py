"""SQL text without a parser: fingerprints, statement kinds, the SELECT-only check, redaction.

A fingerprint is the statement with comments removed, literals and placeholders replaced
by ``?``, IN-lists and multi-row VALUES collapsed and whitespace squeezed: the same query
with other values has the same fingerprint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "UnsafeStatement",
    "check_single_select",
    "fingerprint",
    "group_of",
    "kind_of",
    "redact_params",
    "redact_sql",
]

_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_LITERAL = re.compile(
    r"""
      \$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$   # dollar-quoted string
    | [EeBbXxNn]?'(?:[^']|'')*'                   # 'string', E'..', B'..'
    | \$\d+ | %\(\w+\)s | %s | (?<![:\w]):\w+ | \? # placeholders of every paramstyle
    | (?<![\w$."])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b  # numbers (not inside identifiers)
    | \b(?:TRUE|FALSE|NULL)\b
    """,
    re.X | re.I | re.S,
)
_IN_LIST = re.compile(r"\bIN\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.I)
_VALUES = re.compile(
    r"\bVALUES\s*(\(\s*\?(?:\s*,\s*\?)*\s*\))(?:\s*,\s*\(\s*\?(?:\s*,\s*\?)*\s*\))*", re.I
)
_SPACE = re.compile(r"\s+")
_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE|JOIN)\s+((?:"[^"]+"|\w+)(?:\.(?:"[^"]+"|\w+))?)', re.I)

WRITE_KINDS = frozenset(
    {
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "CREATE",
        "DROP",
        "ALTER",
        "TRUNCATE",
        "GRANT",
        "REVOKE",
        "COPY",
        "VACUUM",
        "REINDEX",
    }
)


def fingerprint(statement: str) -> str:
    """The normalized form of ``statement`` (pure; callers cache it)."""
    text = _COMMENT.sub(" ", statement)
    text = _LITERAL.sub("?", text)
    text = _IN_LIST.sub("IN (...)", text)
    text = _VALUES.sub("VALUES (...)", text)
    return _SPACE.sub(" ", text).strip()


def kind_of(statement: str) -> str:
    """First keyword, upper-cased (``WITH`` counts as SELECT unless it writes)."""
    head = _COMMENT.sub(" ", statement[:2000]).lstrip()[:12].split(None, 1)
    kind = head[0].upper().rstrip("(;") if head else ""
    if kind == "WITH":
        upper = statement.upper()
        writes = any(re.search(rf"\b{k}\b", upper) for k in ("INSERT", "UPDATE", "DELETE"))
        return "WRITE" if writes else "SELECT"
    return kind or "OTHER"


def group_of(kind: str, statement: str) -> str:
    """A bounded label for metrics: ``SELECT users``, ``INSERT jobs``, ``BEGIN``."""
    match = _TABLE.search(statement[:4000])
    if match is None:
        return kind
    table = match.group(1).replace('"', "").rsplit(".", 1)[-1].lower()
    return f"{kind} {table[:40]}"


# -- the explain endpoint: one SELECT, nothing else ---------------------------------------


class UnsafeStatement(ValueError):
    """The statement is not a single read-only SELECT."""


_FORBIDDEN = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|CREATE|DROP|ALTER|TRUNCATE|GRANT|REVOKE|COPY|CALL|DO|"
    r"EXECUTE|PREPARE|LOCK|VACUUM|ANALYZE|REINDEX|CLUSTER|SET|RESET|LISTEN|NOTIFY|INTO|"
    r"ATTACH|DETACH|PRAGMA|REPLACE|UPSERT|FOR\s+UPDATE|FOR\s+SHARE|FOR\s+NO\s+KEY|"
    r"pg_sleep|pg_terminate_backend|pg_cancel_backend|pg_read_file|lo_import|lo_export|"
    r"dblink|set_config|nextval|setval)\b",
    re.I,
)
_STRINGS = re.compile(r"\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$|'(?:[^']|'')*'", re.S)


def check_single_select(sql: str) -> str:
    """Return ``sql`` (trailing ``;`` removed) if it is one plain SELECT; else raise.

    Conservative on purpose: comments are refused outright (they can hide statements
    from a reader), as is any keyword that writes, locks, or calls out, anywhere.
    """
    text = sql.strip()
    if not text:
        raise UnsafeStatement("empty statement")
    if len(text) > 20_000:
        raise UnsafeStatement("statement longer than 20000 characters")
    if "\x00" in text:
        raise UnsafeStatement("NUL character in statement")
    bare = _STRINGS.sub("''", text)  # keywords inside string literals are data
    if "--" in bare or "/*" in bare or "*/" in bare:
        raise UnsafeStatement("comments are not accepted")
    bare = bare.rstrip().rstrip(";").rstrip()
    if ";" in bare:
        raise UnsafeStatement("only a single statement is accepted")
    if "\\" in bare:
        raise UnsafeStatement("backslash commands are not accepted")
    first = bare.split(None, 1)[0].upper().rstrip("(") if bare else ""
    if first not in ("SELECT", "WITH", "VALUES", "TABLE"):
        raise UnsafeStatement(f"only SELECT is accepted, got {first or 'nothing'}")
    found = _FORBIDDEN.search(bare)
    if found:
        raise UnsafeStatement(f"{found.group(1).upper()} is not allowed in an explained SELECT")
    return text.rstrip().rstrip(";").rstrip()


# -- redaction ----------------------------------------------------------------------------

_SECRET_NAME = re.compile(r"pass|secret|token|key|auth|cred|session|cookie|ssn|card|otp", re.I)
_SECRET_VALUE = re.compile(
    r"^(?:eyJ[\w-]+\.[\w-]+\.[\w-]*"  # JWT
    r"|(?:sk|pk|rk|ghp|gho|xox[abp]|AKIA)[\w-]{10,}"  # API keys
    r"|\$2[aby]\$.{50,}|\$argon2.+|pbkdf2.+"  # password hashes
    r"|[A-Fa-f0-9]{32,}|[A-Za-z0-9+/=_-]{40,})$"  # long hex / base64 tokens
)
_SQL_SECRET = re.compile(
    r"((?:password|passwd|secret|token|api_key|apikey)\w*\s*(?:=|:=)\s*)'(?:[^']|'')*'", re.I
)
REDACTED = "***"


def _looks_secret(value: Any) -> bool:
    return isinstance(value, str | bytes) and bool(
        _SECRET_VALUE.match(value if isinstance(value, str) else value.decode("latin-1"))
    )


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "..."
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, int | float | bool | str) or value is None:
        return value
    return str(value)[:200]


def redact_params(params: Any, statement: str = "", names: Sequence[str] | None = None) -> Any:
    """A JSON-able copy of DBAPI parameters with secret-looking values replaced.

    ``names``: the bind names of positional parameters (SQLAlchemy's ``positiontup``);
    else names are read off the statement (``col = $1``).
    """
    if params is None:
        return None
    if isinstance(params, Mapping):
        return {
            str(k): REDACTED if _SECRET_NAME.search(str(k)) or _looks_secret(v) else _short(v)
            for k, v in list(params.items())[:100]
        }
    if isinstance(params, Sequence) and not isinstance(params, str | bytes):
        bound = _positional_names(statement)
        if names:
            bound.update({i + 1: str(n) for i, n in enumerate(names)})
        out: list[Any] = []
        for i, v in enumerate(list(params)[:100]):
            if isinstance(v, Mapping | list | tuple):
                out.append(redact_params(v, statement, names))
                continue
            name = bound.get(i + 1, "")
            secret = bool(name and _SECRET_NAME.search(name)) or _looks_secret(v)
            out.append(REDACTED if secret else _short(v))
        return out
    return REDACTED if _looks_secret(params) else _short(params)


_PLACEHOLDER = re.compile(r"\$(\d+)|\?")
_BEFORE = re.compile(r'"?(\w+)"?\s*(?:=|<>|!=|LIKE|ILIKE)\s*$', re.I)
_INSERT_COLS = re.compile(r"INSERT\s+INTO\s+\S+\s*\(([^)]*)\)", re.I)


def _positional_names(statement: str) -> dict[int, str]:
    """Column names bound to positional placeholders, where the text makes it plain."""
    names: dict[int, str] = {}
    ins = _INSERT_COLS.search(statement)
    if ins:
        for i, col in enumerate(ins.group(1).split(",")):
            names[i + 1] = col.strip().strip('"')
    for n, m in enumerate(_PLACEHOLDER.finditer(statement), start=1):
        before = _BEFORE.search(statement[max(m.start() - 80, 0) : m.start()])
        if before:
            names[int(m.group(1)) if m.group(1) else n] = before.group(1)
    return names


def redact_sql(statement: str) -> str:
    """The statement with literals assigned to secret-named columns replaced."""
    return _SQL_SECRET.sub(lambda m: f"{m.group(1)}'{REDACTED}'", statement)


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
