"""Redis workflow store: one hash per run (its steps are fields of it), one per approval.

Keys (``<p>`` = the ``?prefix=`` of the URL, default ``hw``)::

    <p>:wf:{<run id>}          hash: state, info (JSON), output, error, finished_at,
                               s:<step>:state, s:<step>:rec (JSON object of the small
                               fields, merged by the script), s:<step>:result (JSON)
    <p>:wfa:{<approval id>}    hash: state, expires_at, info (JSON), decided_*, comment
    <p>:wf:runs, <p>:wf:runs:t:<tenant>, <p>:wf:active        sorted sets of run ids
    <p>:wfa:all, <p>:wfa:t:<tenant>, <p>:wfa:pending          sorted sets of approval ids

Every transition is ``lua/cas-1.lua`` on ONE hash (it can also return the hash after
the move: a step's completion and the snapshot that advances the run are one round
trip), so a run's moves touch one slot (the
``{run id}`` hash tag) and the store works on Redis Cluster. The indexes are single-key
commands sent after the write they follow (not atomic with it): a crash in between can
leave an index entry behind, which the readers skip.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from headway.connections.redis import ConcurrentCalls, is_cluster
from headway.workflows import constants as c
from headway.workflows.base import StepMove, WorkflowBackend
from headway.workflows.codec import dumps, loads
from headway.workflows.models import STEP_FIELDS, ApprovalRecord, RunRecord, StepRecord

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline

    from headway.connections import Connections

_RUN_INFO = ("id", "workflow", "spec", "input", "tenant", "user_id", "created_at")
_APPROVAL_INFO = ("id", "run_id", "step", "tenant", "approvers", "role", "created_at", "workflow")
_Move = tuple[list[str], list[Any], list[Any]]  # conditions, merges, writes
_REC_FIELDS = tuple(f for f in STEP_FIELDS if f != "result")
_SCAN = 200  # index entries read per round trip while filtering a list


def split_prefix(url: str, default: str = c.REDIS_PREFIX) -> tuple[str, str]:
    """``redis://h/0?prefix=x`` -> (``redis://h/0``, ``x``)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    prefix = query.pop("prefix", default)
    return urlunsplit(parts._replace(query=urlencode(query))), prefix


def _cond(field: str, states: Collection[str]) -> list[str]:
    return [field, "in", "|".join(states)]


class RedisWorkflowBackend(WorkflowBackend):
    def __init__(self, url: str, connections: Connections | None = None) -> None:
        super().__init__(url, connections)
        self.redis_url, self.prefix = split_prefix(url)
        self._client: Redis | None = None
        self.cluster = is_cluster(url)
        self._script = resources.files(__package__).joinpath("lua", "cas-1.lua").read_bytes()
        self._sha = ""

    async def open(self) -> None:
        if self._client is not None:
            return
        if self.connections is not None:
            self._client = self.connections.redis(self.redis_url)
        else:
            self._client = Redis.from_url(self.redis_url)
        self._sha = str(await self._client.script_load(self._script))

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self.connections is None:
            await client.aclose()

    @property
    def redis(self) -> Redis:
        if self._client is None:
            raise RuntimeError("the Redis workflow store is not open")
        return self._client

    async def _run_moves(
        self, key: str, moves: Sequence[_Move], snapshot: bool = False
    ) -> tuple[list[bool], list[Any]]:
        """One cas-1.lua call: the moves in order, and the hash after them if asked."""
        args: list[Any] = [int(snapshot), len(moves)]
        for conds, merges, writes in moves:
            args += [len(conds) // 3, *conds, len(merges) // 2, *merges, len(writes) // 2, *writes]
        try:
            reply = await self.redis.evalsha(self._sha, 1, key, *args)
        except NoScriptError:  # the server restarted or SCRIPT FLUSH: load it again, once
            self._sha = str(await self.redis.script_load(self._script))
            reply = await self.redis.evalsha(self._sha, 1, key, *args)
        applied, raw = reply
        return [bool(a) for a in applied], raw

    def _pipeline(self) -> Pipeline:
        if self.cluster:  # one call per slot's node, sent concurrently
            return cast("Pipeline", ConcurrentCalls(self.redis))
        return self.redis.pipeline(transaction=False)

    async def _swap(self, key: str, conds: list[str], writes: list[Any]) -> bool:
        (won,), _ = await self._run_moves(key, [(conds, [], writes)])
        return won

    # -- keys -------------------------------------------------------------------------

    def _run_key(self, run_id: str) -> str:
        return f"{self.prefix}:wf:{{{run_id}}}"

    def _approval_key(self, approval_id: str) -> str:
        return f"{self.prefix}:wfa:{{{approval_id}}}"

    def _index(self, kind: str, tenant: str | None) -> str:
        base = f"{self.prefix}:{kind}"
        return base + ("" if tenant is None else f":t:{tenant}")

    # -- runs -------------------------------------------------------------------------

    async def create_run(self, run: RunRecord) -> None:
        mapping: dict[Any, Any] = {
            "state": run.state,
            "info": dumps({k: getattr(run, k) for k in _RUN_INFO}),
            "output": dumps(run.output), "error": dumps(run.error),
            "finished_at": dumps(run.finished_at),
        }  # fmt: skip
        for s in run.steps.values():
            rec = {k: getattr(s, k) for k in ("kind", "task", "position", *_REC_FIELDS)}
            mapping[f"s:{s.name}:state"] = s.state
            mapping[f"s:{s.name}:rec"] = dumps(rec)
            mapping[f"s:{s.name}:result"] = dumps(s.result)
        key = self._run_key(run.id)
        pipe = self._pipeline()
        pipe.hset(key, mapping=mapping)
        for index in {self._index("wf:runs", None), self._index("wf:runs", run.tenant)}:
            pipe.zadd(index, {run.id: run.created_at})
        pipe.zadd(self._index("wf:active", None), {run.id: run.created_at})
        await pipe.execute()

    async def get_run(self, run_id: str) -> RunRecord | None:
        return _parse_run(await self.redis.hgetall(self._run_key(run_id)))

    def _step_move(self, m: StepMove) -> _Move:
        conds = _cond(f"s:{m.step}:state", m.from_states)
        if m.run_states is not None:
            conds += _cond("state", m.run_states)
        for other, states in (m.requires or {}).items():
            conds += _cond(f"s:{other}:state", states)
        writes: list[Any] = [f"s:{m.step}:state", m.to_state]
        unknown = set(m.fields) - set(STEP_FIELDS)
        if unknown:
            raise ValueError(f"unknown step fields {sorted(unknown)}")
        if "result" in m.fields:
            writes += [f"s:{m.step}:result", dumps(m.fields["result"])]
        patch = {k: v for k, v in m.fields.items() if k != "result"}
        merges: list[Any] = [f"s:{m.step}:rec", dumps(patch)] if patch else []
        return conds, merges, writes

    async def move_steps(
        self, run_id: str, moves: Sequence[StepMove]
    ) -> tuple[list[bool], RunRecord | None]:
        plan = [self._step_move(m) for m in moves]
        applied, raw = await self._run_moves(self._run_key(run_id), plan, snapshot=True)
        return applied, _parse_run(dict(zip(raw[::2], raw[1::2], strict=True)))

    async def _fetch_runs(self, ids: Sequence[str]) -> list[RunRecord]:
        pipe = self._pipeline()
        for run_id in ids:
            pipe.hgetall(self._run_key(run_id))
        found = await pipe.execute()
        return [r for r in map(_parse_run, found) if r is not None]

    async def _scan(
        self, index: str, key_of: Any, state: str | None, limit: int, offset: int
    ) -> list[str]:
        """Ids from ``index`` (newest first) whose hash has ``state``; skips stale ids."""
        picked: list[str] = []
        start, skip = 0, offset
        while len(picked) < limit:
            found_ids: Any = await self.redis.zrevrange(index, start, start + _SCAN - 1)
            ids = [i.decode() for i in found_ids]
            if not ids:
                break
            start += len(ids)
            pipe = self._pipeline()
            for item in ids:
                pipe.hget(key_of(item), "state")
            states = await pipe.execute()
            for item, found in zip(ids, states, strict=True):
                if found is None or (state is not None and found.decode() != state):
                    continue
                if skip:
                    skip -= 1
                    continue
                picked.append(item)
        return picked[:limit]

    async def list_runs(
        self, *, tenant: str | None, state: str | None, limit: int, offset: int
    ) -> list[RunRecord]:
        index = self._index("wf:runs", tenant)
        return await self._fetch_runs(await self._scan(index, self._run_key, state, limit, offset))

    async def active_runs(self, limit: int) -> list[str]:
        index = self._index("wf:active", None)
        return await self._scan(index, self._run_key, c.RUNNING, limit, 0)

    async def move_step(
        self,
        run_id: str,
        step: str,
        *,
        from_states: Collection[str],
        to_state: str,
        fields: Mapping[str, Any],
        run_states: Collection[str] | None,
        requires: Mapping[str, Collection[str]] | None = None,
    ) -> bool:
        move = StepMove(step, from_states, to_state, fields, run_states, requires)
        (won,), _ = await self._run_moves(self._run_key(run_id), [self._step_move(move)])
        return won

    async def move_run(
        self, run_id: str, *, from_states: Collection[str], to_state: str,
        fields: Mapping[str, Any],
    ) -> bool:  # fmt: skip
        writes: list[Any] = ["state", to_state]
        for name, value in fields.items():
            writes += [name, dumps(value)]
        won = await self._swap(self._run_key(run_id), _cond("state", from_states), writes)
        if won and to_state != c.RUNNING:
            await self.redis.zrem(self._index("wf:active", None), run_id)
        return won

    async def delete_runs(self, finished_before: float, limit: int) -> int:
        index, start, deleted = self._index("wf:runs", None), 0, 0
        while deleted < limit:
            # oldest first; a run created after the cutoff cannot have finished before it
            found: Any = await self.redis.zrangebyscore(
                index, "-inf", f"({finished_before!r}", start=start, num=_SCAN
            )
            ids = [i.decode() for i in found]
            if not ids:
                break
            runs = {r.id: r for r in await self._fetch_runs(ids)}
            old = [
                r for r in runs.values()
                if r.state in c.FINAL_RUN and (r.finished_at or 0) < finished_before
            ][: limit - deleted]  # fmt: skip
            stale = [i for i in ids if i not in runs]
            await self._forget(old, stale)
            deleted += len(old)
            start += len(ids) - len(old) - len(stale)
            if len(ids) < _SCAN:
                break
        return deleted

    async def _forget(self, old: Sequence[RunRecord], stale: Sequence[str]) -> None:
        pipe = self._pipeline()
        for run_id in stale:
            pipe.zrem(self._index("wf:runs", None), run_id)
        for run in old:
            pipe.delete(self._run_key(run.id))
            for index in {self._index("wf:runs", None), self._index("wf:runs", run.tenant)}:
                pipe.zrem(index, run.id)
            pipe.zrem(self._index("wf:active", None), run.id)
            for approval_id in (s.approval_id for s in run.steps.values() if s.approval_id):
                pipe.delete(self._approval_key(approval_id))
                tenant_index = self._index("wfa:all", run.tenant)
                for index in {self._index("wfa:all", None), tenant_index}:
                    pipe.zrem(index, approval_id)
                pipe.zrem(self._index("wfa:pending", None), approval_id)
        if stale or old:
            await pipe.execute()

    # -- approvals --------------------------------------------------------------------

    async def create_approval(self, approval: ApprovalRecord) -> None:
        key = self._approval_key(approval.id)
        mapping: dict[Any, Any] = {
            "state": approval.state,
            "expires_at": "" if approval.expires_at is None else repr(approval.expires_at),
            "info": dumps({k: getattr(approval, k) for k in _APPROVAL_INFO}),
            "decided_by": dumps(None), "decided_at": dumps(None), "comment": dumps(None),
        }  # fmt: skip
        pipe = self._pipeline()
        pipe.hset(key, mapping=mapping)
        for index in {self._index("wfa:all", None), self._index("wfa:all", approval.tenant)}:
            pipe.zadd(index, {approval.id: approval.created_at})
        if approval.state == c.APPROVAL_PENDING:
            pipe.zadd(self._index("wfa:pending", None), {approval.id: approval.created_at})
        await pipe.execute()

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        return _parse_approval(await self.redis.hgetall(self._approval_key(approval_id)))

    async def decide_approval(
        self, approval_id: str, *, to_state: str, by: str | None, at: float,
        comment: str | None, unexpired: bool,
    ) -> bool:  # fmt: skip
        conds = _cond("state", (c.APPROVAL_PENDING,))
        if unexpired:
            conds += ["expires_at", "gt", repr(at)]
        writes = [
            "state", to_state, "decided_by", dumps(by), "decided_at", dumps(at),
            "comment", dumps(comment),
        ]  # fmt: skip
        won = await self._swap(self._approval_key(approval_id), conds, writes)
        if won:
            await self.redis.zrem(self._index("wfa:pending", None), approval_id)
        return won

    async def list_approvals(
        self, *, tenant: str | None, state: str | None, limit: int, offset: int
    ) -> list[ApprovalRecord]:
        if state == c.APPROVAL_PENDING and tenant is None:
            index = self._index("wfa:pending", None)
        else:
            index = self._index("wfa:all", tenant)
        ids = await self._scan(index, self._approval_key, state, limit, offset)
        pipe = self._pipeline()
        for approval_id in ids:
            pipe.hgetall(self._approval_key(approval_id))
        found = await pipe.execute()
        return [a for a in map(_parse_approval, found) if a is not None]

    async def pending_approvals(self) -> int:
        return int(await self.redis.zcard(self._index("wfa:pending", None)))


def _parse_run(raw: Mapping[Any, Any]) -> RunRecord | None:
    if b"info" not in raw:
        return None
    fields = {k.decode(): v for k, v in raw.items()}
    info = loads(fields["info"])
    run = RunRecord(**info, state=fields["state"].decode())
    run.output, run.error = loads(fields["output"]), loads(fields["error"])
    run.finished_at = loads(fields["finished_at"])
    for name, value in fields.items():
        if name.startswith("s:") and name.endswith(":rec"):
            step = name[2:-4]
            rec = StepRecord(step, **loads(value), state=fields[f"s:{step}:state"].decode())
            rec.result = loads(fields.get(f"s:{step}:result", b"null"))
            run.steps[step] = rec
    return run


def _parse_approval(raw: Mapping[Any, Any]) -> ApprovalRecord | None:
    if b"info" not in raw:
        return None
    expires = raw[b"expires_at"].decode()
    approval = ApprovalRecord(**loads(raw[b"info"]), state=raw[b"state"].decode())
    approval.expires_at = float(expires) if expires else None
    approval.decided_by, approval.decided_at = loads(raw[b"decided_by"]), loads(raw[b"decided_at"])
    approval.comment = loads(raw[b"comment"])
    return approval
