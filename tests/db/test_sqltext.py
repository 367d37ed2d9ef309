from __future__ import annotations

import pytest

from headway.db.sqltext import (
    UnsafeStatement,
    check_single_select,
    fingerprint,
    kind_of,
    redact_params,
    redact_sql,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SELECT * FROM t WHERE id = 1", "select * from t where id = 42"),
        ("SELECT * FROM t WHERE name = 'x'", "SELECT * FROM t WHERE name = 'it''s'"),
        ("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN ($1, $2)"),
        ("INSERT INTO t (a, b) VALUES (?, ?)", "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')"),
        ("SELECT a FROM t WHERE x = %(x)s", "SELECT  a\n FROM t /* c */ WHERE x = :x"),
    ],
)
def test_same_query_other_values_same_fingerprint(a: str, b: str) -> None:
    assert fingerprint(a).lower() == fingerprint(b).lower()


def test_fingerprint_keeps_identifiers() -> None:
    fp = fingerprint("SELECT t1.col2 FROM tab_3 t1 WHERE t1.x = 10 AND y IN (1,2)")
    assert fp == "SELECT t1.col2 FROM tab_3 t1 WHERE t1.x = ? AND y IN (...)"
    assert fingerprint("SELECT * FROM t WHERE a = $$x$$") == "SELECT * FROM t WHERE a = ?"


def test_kinds() -> None:
    assert kind_of("  select 1") == "SELECT"
    assert kind_of("WITH x AS (SELECT 1) SELECT * FROM x") == "SELECT"
    assert kind_of("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d") == "WRITE"
    assert kind_of("/* hi */ UPDATE t SET a = 1") == "UPDATE"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE x",
        "select 1;drop table x;",
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        "with d as (delete from t returning *) select * from d",
        "SELECT 1 -- ; DROP TABLE x",
        "SELECT 1 /* */; DROP TABLE x",
        "SELECT /* hidden */ 1",
        "DELETE FROM t",
        "dElEtE FROM t",
        "UPDATE t SET a = 1",
        "INSERT INTO t VALUES (1)",
        "SELECT * INTO new_t FROM t",
        "SELECT * FROM t FOR UPDATE",
        "EXPLAIN ANALYZE DELETE FROM t",
        "SELECT pg_sleep(100)",
        "VACUUM t",
        "",
        "   ",
        "SET search_path = x",
    ],
)
def test_explain_refuses_anything_but_one_select(sql: str) -> None:
    with pytest.raises(UnsafeStatement):
        check_single_select(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM t WHERE a = 1;",
        "select a, 'DROP TABLE x; --' from t",
        "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
        "SELECT * FROM updates_log WHERE deleted_at IS NULL",
    ],
)
def test_explain_accepts_a_select(sql: str) -> None:
    assert check_single_select(sql).lower().startswith(("select", "with"))


def test_redaction() -> None:
    stmt = "SELECT * FROM users WHERE email = $1 AND password_hash = $2 AND n = $3"
    out = redact_params(("a@b.c", "hunter2", 7), stmt)
    assert out == ["a@b.c", "***", 7]
    out = redact_params({"api_token": "x", "name": "bob", "v": "eyJhbGciOi.eyJzdWIi.sig"})
    assert out == {"api_token": "***", "name": "bob", "v": "***"}
    assert redact_params(["ghp_abcdefghijklmnop1234"]) == ["***"]
    assert "s3cr3t" not in redact_sql("UPDATE u SET password = 's3cr3t' WHERE id = 1")
