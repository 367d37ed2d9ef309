"""JSON payloads: strict at enqueue (TypeError there, never in the worker), lenient on read.

Only JSON types pass: dict with str keys, list/tuple, str, int, float, bool, None.
Dataclasses and datetimes are refused too, so that a task receives what it was sent.
"""

from __future__ import annotations

from typing import Any

import orjson

from headway.jobs.models import Job, JobRecord

_STRICT = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any, what: str) -> bytes:
    """Encode ``value``; a non-JSON value raises TypeError naming ``what``."""
    try:
        return orjson.dumps(value, default=_refuse, option=_STRICT)
    except TypeError as exc:
        raise TypeError(f"{what} must be JSON serializable: {exc}") from None


def encode_payload(
    task: str,
    args: tuple[Any, ...] | list[Any],
    kwargs: dict[str, Any],
    *,
    meta: dict[str, Any] | None = None,
    tenant: str | None = None,
    user_id: str | None = None,
) -> bytes:
    payload: dict[str, Any] = {"task": task, "args": list(args), "kwargs": kwargs}
    if meta:
        payload["meta"] = meta
    if tenant is not None:
        payload["tenant"] = tenant
    if user_id is not None:
        payload["user_id"] = user_id
    return dumps(payload, f"the arguments of task {task!r}")


def decode_payload(data: bytes) -> dict[str, Any]:
    """The payload dict; ValueError with a clear message when it is corrupt."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"corrupt job payload (not JSON: {exc})") from None
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("args", []), list)
        or not isinstance(payload.get("kwargs", {}), dict)
    ):
        raise ValueError("corrupt job payload (expected an object with args and kwargs)")
    return payload


def to_job(rec: JobRecord) -> Job:
    """Decode a stored record for the read API; a corrupt payload shows as such, not raised."""
    job = Job(
        id=rec.id,
        queue=rec.queue,
        task=rec.task,
        state=rec.state,
        priority=rec.priority,
        attempts=rec.attempts,
        max_attempts=rec.max_attempts,
        enqueued_at=rec.enqueued_at,
        run_at=rec.run_at,
        started_at=rec.started_at,
        finished_at=rec.finished_at,
        worker=rec.worker,
        progress=rec.progress,
        progress_message=rec.progress_message,
        error=rec.error,
        traceback=rec.traceback,
        cancel_requested=bool(rec.cancel_requested),
    )
    try:
        payload = decode_payload(rec.data)
    except ValueError as exc:
        job.meta = {"payload_error": str(exc)}
    else:
        job.args = payload.get("args", [])
        job.kwargs = payload.get("kwargs", {})
        job.meta = payload.get("meta", {})
        job.tenant = payload.get("tenant")
        job.user_id = payload.get("user_id")
    if rec.result is not None:
        try:
            job.result = orjson.loads(rec.result)
        except orjson.JSONDecodeError:
            job.result = None
    return job
