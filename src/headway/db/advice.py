"""Index advice (PostgreSQL): sequential scans on large tables filtered by unindexed columns.

Candidate statements come from ``pg_stat_statements`` when the extension is loaded, and
otherwise from what the query monitor captured (slow statements, then the costliest
SELECT fingerprints). Each is planned with ``EXPLAIN (FORMAT JSON, VERBOSE)`` using the
parameters it ran with; every ``Seq Scan`` with a ``Filter`` names a table and the
columns it filters on. A suggestion is kept when the table has at least
``HEADWAY_DB_INDEX_MIN_ROWS`` rows and no index starts with the column; ``pg_stats``
(``n_distinct``, ``correlation``) ranks the candidates.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from headway.db.explain import explain_raw

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from headway.db.monitor import QueryMonitor

__all__ = ["index_advice"]

_COND = re.compile(
    r'([A-Za-z_"][\w".]*)\)?(?:::[\w ]+?)?\)?\s*(=|<>|<=|>=|<|>|~~\*?|!~~|= ANY)\s', re.I
)
_PSS = re.compile(
    r'\bFROM\s+((?:"?\w+"?\.)?"?\w+"?)(?:\s+(?:AS\s+)?\w+)?\s+WHERE\s+(.*)', re.I | re.S
)
_PSS_COL = re.compile(r'(?:\w+\.)?"?(\w+)"?\s*(?:=|<|>|<=|>=|LIKE|IN)\s*(?:\$\d+|ANY)', re.I)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def filter_columns(condition: str) -> list[str]:
    """Column names compared in a plan's ``Filter`` (equality first)."""
    eq: list[str] = []
    other: list[str] = []
    for m in _COND.finditer(condition):
        col = m.group(1).rsplit(".", 1)[-1].strip('"')
        if not col or col[0].isdigit() or col.lower() in ("and", "or", "not", "null"):
            continue
        (eq if m.group(2) in ("=", "= ANY") else other).append(col)
    return list(dict.fromkeys(eq + other))


def _seq_scans(plan: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = [plan[0]["Plan"]] if isinstance(plan, list) and plan else []
    while stack:
        node = stack.pop()
        if node.get("Node Type") == "Seq Scan" and node.get("Filter"):
            found.append(node)
        stack.extend(node.get("Plans", []))
    return found


async def _captured(engine: AsyncEngine, monitor: QueryMonitor, limit: int) -> list[Any]:
    """(evidence, schema, table, columns) from the monitor's statements."""
    seen: dict[str, tuple[str, Any, dict[str, Any]]] = {}
    for entry in reversed(monitor.slow_log):
        st = monitor.stats.get(entry["fingerprint"])
        if st is not None and st.kind == "SELECT":
            seen.setdefault(st.fingerprint, (st.sample, st.sample_params, st.as_dict()))
    ranked = sorted(monitor.stats.values(), key=lambda s: s.total, reverse=True)
    for st in ranked:
        if len(seen) >= limit:
            break
        if st.kind == "SELECT" and not st.fingerprint.lower().startswith("explain"):
            seen.setdefault(st.fingerprint, (st.sample, st.sample_params, st.as_dict()))
    out = []
    for sample, params, stats in seen.values():
        try:
            plan = await explain_raw(engine, sample, params, verbose=True)
        except Exception:  # noqa: S112  (a statement that no longer plans: skip it)
            continue
        for node in _seq_scans(plan):
            cols = filter_columns(node["Filter"])
            if cols:
                evidence = {
                    "source": "captured",
                    "query": stats,
                    "plan_rows": node.get("Plan Rows"),
                    "filter": node["Filter"],
                }
                out.append((evidence, node.get("Schema"), node["Relation Name"], cols))
    return out


async def _from_pg_stat_statements(conn: Any, limit: int) -> list[Any] | None:
    try:
        rows = (
            await conn.execute(
                text(
                    "SELECT query, calls, total_exec_time, mean_exec_time "
                    "FROM pg_stat_statements WHERE query ILIKE 'select%' "
                    "ORDER BY total_exec_time DESC LIMIT :limit"
                ),
                {"limit": limit},
            )
        ).all()
    except Exception:
        await conn.rollback()
        return None
    out = []
    for query, calls, total, mean in rows:
        m = _PSS.search(query)
        if m is None:
            continue
        schema, _, table = m.group(1).replace('"', "").rpartition(".")
        cols = list(dict.fromkeys(_PSS_COL.findall(m.group(2))))
        if cols:
            evidence = {
                "source": "pg_stat_statements",
                "query": query[:2000],
                "calls": calls,
                "total_ms": round(total, 3),
                "mean_ms": round(mean, 3),
            }
            out.append((evidence, schema or None, table, cols))
    return out


_TABLE_FACTS = """
SELECT c.oid, n.nspname, c.relname, greatest(c.reltuples, 0)::bigint AS rows,
       coalesce(s.seq_scan, 0) AS seq_scan, coalesce(s.seq_tup_read, 0) AS seq_tup_read,
       coalesce(s.idx_scan, 0) AS idx_scan, coalesce(s.n_live_tup, 0) AS live
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relname = :table AND c.relkind = 'r'
  AND (n.nspname = :schema OR (:schema IS NULL AND n.nspname = ANY (current_schemas(false))))
LIMIT 1
"""
_INDEXED = """
SELECT a.attname FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = :oid
"""
_PG_STATS = """
SELECT attname, n_distinct, correlation, null_frac FROM pg_stats
WHERE schemaname = :schema AND tablename = :table
"""


async def index_advice(
    engine: AsyncEngine, monitor: QueryMonitor, *, min_rows: int, limit: int = 50
) -> dict[str, Any]:
    """``{"source": ..., "suggestions": [{"statement", "table", "columns", "evidence"}]}``."""
    if engine.dialect.name != "postgresql":
        return {"source": None, "suggestions": [], "note": "index advice needs PostgreSQL"}
    async with engine.connect() as conn:
        candidates = await _from_pg_stat_statements(conn, limit)
    source = "pg_stat_statements"
    if not candidates:
        candidates, source = await _captured(engine, monitor, limit), "captured"
    suggestions: dict[str, dict[str, Any]] = {}
    async with engine.connect() as conn:
        for evidence, schema, table, cols in candidates:
            item = await _suggest(conn, evidence, schema, table, cols, min_rows)
            if item is not None and item["statement"] not in suggestions:
                suggestions[item["statement"]] = item
    ranked = sorted(suggestions.values(), key=lambda s: s["score"], reverse=True)
    return {"source": source, "suggestions": ranked}


async def _suggest(
    conn: Any, evidence: dict[str, Any], schema: str | None, table: str, cols: list[str],
    min_rows: int,
) -> dict[str, Any] | None:  # fmt: skip
    facts = (
        (await conn.execute(text(_TABLE_FACTS), {"table": table, "schema": schema}))
        .mappings()
        .first()
    )
    if facts is None:
        return None
    rows = max(int(facts["rows"]), int(facts["live"]))
    if rows < min_rows:
        return None
    indexed = set((await conn.execute(text(_INDEXED), {"oid": facts["oid"]})).scalars().all())
    stats = {
        r["attname"]: r
        for r in (
            await conn.execute(text(_PG_STATS), {"schema": facts["nspname"], "table": table})
        ).mappings()
    }
    best: tuple[float, str, dict[str, Any]] | None = None
    for col in cols:
        if col in indexed:
            return None  # an index already leads with a filtered column: not our case
        st = stats.get(col)
        nd = float(st["n_distinct"]) if st is not None else 0.0
        distinct = -nd * rows if nd < 0 else nd
        if st is not None and distinct < 3:
            continue  # a flag-like column: an index would rarely beat the scan
        selectivity = 1.0 / distinct if distinct else 1.0
        score = rows * (1.0 - selectivity)
        facts_col = {
            "n_distinct": nd,
            "estimated_distinct": round(distinct),
            "correlation": None if st is None else st["correlation"],
            "null_frac": None if st is None else st["null_frac"],
        }
        if best is None or score > best[0]:
            best = (score, col, facts_col)
    if best is None:
        return None
    score, col, col_facts = best
    name = f"ix_{table}_{col}"[:63]
    target = f"{_ident(facts['nspname'])}.{_ident(table)}"
    return {
        "statement": f"CREATE INDEX CONCURRENTLY {_ident(name)} ON {target} ({_ident(col)});",
        "schema": facts["nspname"],
        "table": table,
        "columns": [col],
        "score": round(score, 1),
        "evidence": {
            **evidence,
            "table_rows": rows,
            "seq_scans": facts["seq_scan"],
            "seq_tuples_read": facts["seq_tup_read"],
            "index_scans": facts["idx_scan"],
            "column": col_facts,
        },
    }
