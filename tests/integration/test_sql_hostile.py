"""Hostile queries against query_database, on SQLite and on PostgreSQL.

Every query is refused with a clear error or returns allow-listed data only, no output holds a secret,
and the database is unchanged afterwards. Then the database layer alone (the sqlglot policy bypassed)
must still refuse writes, attaching, catalog reads and runaway queries.
"""

from __future__ import annotations

import json
import re

import pytest
from threadrunner.tools.errors import QueryRefused, ToolError, ToolTimeout
from threadrunner.tools.registry import call_tool

from tests.support.sql_databases import (
    ALLOWED_TABLES,
    SECRET_MARKER,
    Target,
    postgres_target,
    sqlite_target,
    target,
)

__all__ = ["postgres_target", "sqlite_target", "target"]  # fixtures used by the tests below

HARMLESS = "harmless"  # may run, but only over allow-listed data
WRITE = r"only SELECT|could not be parsed"
TIMEOUT = r"ran longer than 1 s and was stopped"
NOTES = r"table (\w+\.)?internal_notes is not allowed"
FOREVER = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"

HOSTILE = {
    # writes and statement stacking
    "drop table": ("DROP TABLE sales", WRITE),
    "delete": ("DELETE FROM sales", WRITE),
    "update": ("UPDATE sales SET amount = 0", WRITE),
    "insert": ("INSERT INTO sales (id) VALUES (999999)", WRITE),
    "create table as": ("CREATE TABLE stolen AS SELECT * FROM customers", WRITE),
    "multi statement": ("SELECT 1; COMMIT; DROP TABLE sales", r"exactly one statement is allowed, found 3"),
    "stacked after comment": ("SELECT 1; -- harmless\nDELETE FROM sales", r"exactly one statement"),
    "trailing drop": ("SELECT * FROM sales; DROP TABLE sales --", r"exactly one statement"),
    "writable cte delete": (
        "WITH gone AS (DELETE FROM sales RETURNING *) SELECT count(*) FROM gone",
        r"DELETE",
    ),
    "writable cte update": (
        "WITH x AS (UPDATE customers SET name = 'x' RETURNING id) SELECT * FROM x",
        r"UPDATE",
    ),
    "select into": ("SELECT * INTO stolen FROM sales", r"INTO is not allowed"),
    "for update": ("SELECT * FROM sales FOR UPDATE", r"locking clauses"),
    "for share": ("SELECT id FROM customers FOR SHARE", r"locking clauses|could not be parsed"),
    "commit": ("COMMIT", WRITE),
    "set role": ("SET ROLE postgres", WRITE),
    "copy to file": ("COPY sales TO '/tmp/sales.csv'", WRITE),
    "do block": ("DO $$ BEGIN DELETE FROM sales; END $$", WRITE),
    "explain analyze": ("EXPLAIN ANALYZE DELETE FROM sales", WRITE),
    "vacuum into": ("VACUUM INTO '/tmp/copy.db'", WRITE),
    # other databases, settings and the file system
    "attach": ("ATTACH DATABASE '/tmp/evil.db' AS evil", r"ATTACH|could not be parsed"),
    "pragma": ("PRAGMA query_only = OFF", r"PRAGMA|could not be parsed"),
    "load_extension": ("SELECT load_extension('/tmp/evil.so')", r"function load_extension is not allowed"),
    "readfile": ("SELECT readfile('/etc/passwd')", r"function readfile is not allowed"),
    "pg_read_file": ("SELECT pg_read_file('/etc/passwd')", r"function pg_read_file is not allowed"),
    "pg_read_file in from": ("SELECT * FROM pg_read_file('/etc/passwd')", r"is not allowed: name a table"),
    "lo_export": ("SELECT lo_export(1, '/tmp/x')", r"function lo_export is not allowed"),
    "lo_from_bytea": ("SELECT lo_from_bytea(0, 'x')", r"function lo_from_bytea is not allowed"),
    "dblink": ("SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(a int)", r"is not allowed: name a table"),
    "set_config": (
        "SELECT set_config('statement_timeout', '0', false)",
        r"function set_config is not allowed",
    ),
    "current_setting": (
        "SELECT current_setting('data_directory')",
        r"function current_setting is not allowed",
    ),
    "nextval": ("SELECT nextval('internal_counter')", r"function nextval is not allowed"),
    "pg_sleep": ("SELECT pg_sleep(10)", r"function pg_sleep is not allowed"),
    "qualified pg_sleep": ("SELECT pg_catalog.pg_sleep(10)", r"qualified function calls"),
    "randomblob": ("SELECT randomblob(1000000000)", r"function randomblob is not allowed"),
    "huge printf": ("SELECT printf('%.*c', 1000000000, 'x')", r"function (printf|format) is not allowed"),
    "version": ("SELECT version()", r"function \w*version is not allowed"),
    "current user": ("SELECT current_user", r"function current_user is not allowed"),
    "bare user": ("SELECT user", r"function user is not allowed"),
    "regclass cast": ("SELECT 'pg_authid'::regclass", r"type \w+ is not allowed|could not be parsed"),
    "placeholder": ("SELECT * FROM sales WHERE id = $1", r"parameters are not allowed|unexpected name"),
    # system catalogs
    "sqlite_master": ("SELECT * FROM sqlite_master", r"table sqlite_master is not allowed"),
    "sqlite_schema count": ("SELECT count(*) FROM sqlite_schema", r"table sqlite_schema is not allowed"),
    "information_schema": ("SELECT table_name FROM information_schema.tables", r"information_schema.tables"),
    "pg_catalog": ("SELECT relname FROM pg_catalog.pg_class", r"table pg_catalog.pg_class is not allowed"),
    "pg_roles": ("SELECT rolname FROM pg_roles", r"table pg_roles is not allowed"),
    "pg_user in exists": ("SELECT 1 FROM sales WHERE EXISTS (SELECT 1 FROM pg_user)", r"table pg_user"),
    # tables outside the allow-list, however they are named or reached
    "forbidden table": ("SELECT * FROM internal_notes", NOTES),
    "count of forbidden table": ("SELECT count(*) FROM internal_notes", NOTES),
    "comment hidden table": ("SELECT * FROM /* sales */ internal_notes", NOTES),
    "quoted name": ('SELECT * FROM "internal_notes"', NOTES),
    "upper case name": ("SELECT * FROM INTERNAL_NOTES", r"table (\w+\.)?internal_notes is not allowed"),
    "schema qualified": ("SELECT * FROM public.internal_notes", NOTES),
    "union": ("SELECT id FROM sales UNION SELECT id FROM internal_notes", NOTES),
    "subquery": ("SELECT * FROM sales WHERE id IN (SELECT id FROM internal_notes)", NOTES),
    "scalar subquery": ("SELECT (SELECT note FROM internal_notes LIMIT 1) AS leak", NOTES),
    "join": ("SELECT s.id, n.note FROM sales s JOIN internal_notes n ON n.id = s.id", NOTES),
    "function on forbidden table": ("SELECT upper(note) FROM internal_notes", NOTES),
    "cte over forbidden table": ("WITH x AS (SELECT * FROM internal_notes) SELECT * FROM x", NOTES),
    "cte name outside its scope": (
        "SELECT * FROM (WITH internal_notes AS (SELECT 1 AS id) SELECT * FROM internal_notes) a,"
        " internal_notes",
        NOTES,
    ),
    "cte reading itself": (
        "WITH internal_notes AS (SELECT * FROM internal_notes) SELECT 1 FROM internal_notes",
        NOTES,
    ),
    "cte forward reference": (
        "WITH a AS (SELECT * FROM internal_notes), internal_notes AS (SELECT 1 AS id) SELECT * FROM a",
        NOTES,
    ),
    # runaway queries: stopped by the time budget
    "recursive cte forever": (FOREVER, TIMEOUT),
    "cross join explosion": ("SELECT count(*) FROM sales a, sales b, sales c", TIMEOUT),
    # allowed to run: only allow-listed data comes back, capped
    "table named in a comment": ("SELECT count(*) AS n FROM sales -- , internal_notes", HARMLESS),
    "negative limit": ("SELECT id FROM sales LIMIT -1", HARMLESS),
    "huge limit": ("SELECT * FROM customers LIMIT 100000000", HARMLESS),
    "cte named like a catalog": (
        "WITH sqlite_master AS (SELECT 1 AS x) SELECT x FROM sqlite_master",
        HARMLESS,
    ),
}


@pytest.mark.parametrize(("sql", "expected"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_query_is_refused_or_harmless(target: Target, sql: str, expected: str) -> None:
    # Given a database holding a forbidden table, When the model sends a hostile query
    result = call_tool("query_database", json.dumps({"query": sql}), target.context(sql_timeout_seconds=1.0))
    # Then nothing secret comes back
    assert SECRET_MARKER not in result.output
    assert not any(secret in result.output for secret in target.secrets)
    assert "Traceback" not in result.output
    body = json.loads(result.output)
    if expected == HARMLESS:
        assert not result.is_error, body
        assert body["row_count"] <= 1000
    else:
        # and the refusal says why
        assert result.is_error, body
        assert re.search(expected, body["error"]), body["error"]
    # and the database is exactly as it was
    assert target.unchanged()


def test_the_suite_is_big_enough() -> None:
    assert len([expected for expected in HOSTILE.values() if expected[1] != HARMLESS]) >= 40


def run_directly(target: Target, sql: str) -> None:
    """The database layer alone: no sqlglot policy in front of it."""
    target.database.run_query(sql, allowed_tables=ALLOWED_TABLES, max_rows=10, timeout_seconds=1.0)


SQLITE_ALONE = {
    "delete": ("DELETE FROM sales", r"DELETE is not allowed"),
    "insert": ("INSERT INTO sales (id) VALUES (999999)", r"INSERT is not allowed"),
    "drop": ("DROP TABLE sales", r"is not allowed"),
    "create": ("CREATE TABLE stolen (a)", r"is not allowed"),
    "attach": ("ATTACH DATABASE '/tmp/evil.db' AS evil", r"ATTACH is not allowed"),
    "pragma off": ("PRAGMA query_only = OFF", r"PRAGMA is not allowed"),
    "pragma table valued": ("SELECT * FROM pragma_table_info('sales')", r"is not allowed"),
    "begin": ("BEGIN IMMEDIATE", r"TRANSACTION is not allowed"),
    "vacuum into": ("VACUUM INTO '/tmp/copy.db'", r"is not allowed"),
    "sqlite_master": ("SELECT * FROM sqlite_master", r"table sqlite_master is not allowed"),
    "sqlite_master count": ("SELECT count(*) FROM sqlite_master", r"table sqlite_master is not allowed"),
    "forbidden table": ("SELECT note FROM internal_notes", r"table internal_notes is not allowed"),
    "forbidden count": ("SELECT count(*) FROM internal_notes", r"table internal_notes is not allowed"),
    "forbidden via cte": (
        "WITH x AS (SELECT * FROM internal_notes) SELECT count(*) FROM x",
        r"internal_notes",
    ),
    "cte shadowing a table": ("WITH internal_notes AS (SELECT 1) SELECT count(*) FROM internal_notes", NOTES),
    "load_extension": ("SELECT load_extension('/tmp/evil.so')", r"function load_extension is not allowed"),
    "randomblob": ("SELECT randomblob(10)", r"function randomblob is not allowed"),
    "zeroblob": ("SELECT zeroblob(1000000000)", r"function zeroblob is not allowed"),
    "multi statement": ("SELECT 1; DROP TABLE sales", r"one statement at a time"),
    "runaway": (FOREVER, TIMEOUT),
}


@pytest.mark.parametrize(("sql", "expected"), list(SQLITE_ALONE.values()), ids=list(SQLITE_ALONE))
def test_sqlite_refuses_on_its_own(sqlite_target: Target, sql: str, expected: str) -> None:
    with pytest.raises(ToolError) as refused:
        run_directly(sqlite_target, sql)
    assert re.search(expected, str(refused.value)), refused.value
    assert sqlite_target.unchanged()


POSTGRES_ALONE = {
    "delete": ("DELETE FROM sales", r"cannot execute DELETE in a read-only transaction"),
    "insert": ("INSERT INTO sales (id) VALUES (999999)", r"cannot execute INSERT in a read-only transaction"),
    "drop": ("DROP TABLE sales", r"read-only transaction|must be owner"),
    "temp table": ("CREATE TEMP TABLE stolen (a int)", r"read-only transaction|permission denied"),
    "multi statement": (
        "SELECT 1; COMMIT; DROP TABLE sales",
        r"cannot insert multiple commands into a prepared",
    ),
    "forbidden table": ("SELECT note FROM internal_notes", r"permission denied for table internal_notes"),
    "forbidden count": ("SELECT count(*) FROM internal_notes", r"permission denied for table internal_notes"),
    "pg_authid": ("SELECT rolpassword FROM pg_authid", r"permission denied for table pg_authid"),
    "pg_read_file": ("SELECT pg_read_file('/etc/passwd')", r"permission denied for function pg_read_file"),
    "lo_export": ("SELECT lo_export(1, '/tmp/x')", r"permission denied for function lo_export"),
    "copy to file": ("COPY sales TO '/tmp/sales.csv'", r"pg_write_server_files|superuser"),
    "nextval": ("SELECT nextval('internal_counter')", r"permission denied|read-only transaction"),
    "dblink": ("SELECT dblink_connect('host=evil')", r"does not exist"),
    "runaway": ("SELECT pg_sleep(10)", TIMEOUT),
}


@pytest.mark.postgres
@pytest.mark.xdist_group("postgres")
@pytest.mark.parametrize(("sql", "expected"), list(POSTGRES_ALONE.values()), ids=list(POSTGRES_ALONE))
def test_postgres_refuses_on_its_own(postgres_target: Target, sql: str, expected: str) -> None:
    with pytest.raises(ToolError) as refused:
        run_directly(postgres_target, sql)
    assert re.search(expected, str(refused.value)), refused.value
    assert postgres_target.unchanged()


@pytest.mark.postgres
@pytest.mark.xdist_group("postgres")
def test_postgres_session_state_does_not_survive_a_query(postgres_target: Target) -> None:
    # Given queries that change session settings (possible without the policy, in a read-only transaction)
    rows = postgres_target.database.run_query
    rows(
        "SELECT set_config('application_name', 'pwned', false)",
        allowed_tables=[],
        max_rows=1,
        timeout_seconds=1,
    )
    rows("SET SESSION default_transaction_read_only = off", allowed_tables=[], max_rows=1, timeout_seconds=1)
    rows("SELECT lo_from_bytea(0, 'x')", allowed_tables=[], max_rows=1, timeout_seconds=1)  # rolled back
    # When the next query runs on the pooled connection, Then it starts from a clean, read-only session
    after = rows(
        "SELECT current_setting('application_name')", allowed_tables=[], max_rows=1, timeout_seconds=1
    )
    assert after.rows == [("threadrunner-sql-tool",)]
    with pytest.raises(QueryRefused, match="read-only transaction"):
        rows("DELETE FROM sales", allowed_tables=[], max_rows=1, timeout_seconds=1)
    assert postgres_target.unchanged()  # no large object either


@pytest.mark.postgres
@pytest.mark.xdist_group("postgres")
def test_postgres_timeout_is_reported_as_a_timeout(postgres_target: Target) -> None:
    with pytest.raises(ToolTimeout):
        postgres_target.database.run_query(
            "SELECT pg_sleep(5)", allowed_tables=[], max_rows=1, timeout_seconds=0.2
        )
