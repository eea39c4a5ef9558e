"""The sqlglot policy on its own (no database): what it refuses, what it lets through, what it runs."""

from __future__ import annotations

import pytest
from threadrunner.tools.errors import QueryRefused
from threadrunner.tools.sql_policy import check_query

ALLOWED = ["sales", "customers", "products"]
DIALECTS = ["sqlite", "postgres"]


def check(sql: str, dialect: str, row_limit: int = 100) -> str:
    return check_query(sql, dialect=dialect, allowed_tables=ALLOWED, row_limit=row_limit)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT 1; COMMIT; DROP TABLE sales", "exactly one statement is allowed, found 3"),
        ("DROP TABLE sales", "only SELECT queries are allowed, not DROP"),
        ("WITH gone AS (DELETE FROM sales RETURNING *) SELECT * FROM gone", "found DELETE inside the query"),
        (
            "WITH x AS (UPDATE sales SET amount = 0 RETURNING id) SELECT * FROM x",
            "found UPDATE inside the query",
        ),
        ("SELECT * INTO copy FROM sales", "SELECT ... INTO is not allowed"),
        ("SELECT * FROM sales FOR UPDATE", "locking clauses"),
        ("SELECT pg_sleep(10)", "function pg_sleep is not allowed"),
        ("SELECT pg_catalog.pg_sleep(10)", "qualified function calls"),
        ("SELECT set_config('statement_timeout', '0', false)", "function set_config is not allowed"),
        ("SELECT nextval('seq')", "function nextval is not allowed"),
        ("SELECT randomblob(100)", "function randomblob is not allowed"),
        ("SELECT load_extension('evil')", "function load_extension is not allowed"),
        ("SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(a int)", "name a table"),
        ("SELECT * FROM sqlite_master", "table sqlite_master is not allowed"),
        ("SELECT * FROM information_schema.tables", "table information_schema.tables is not allowed"),
        ("SELECT * FROM pg_catalog.pg_class", "table pg_catalog.pg_class is not allowed"),
        ("SELECT * FROM /* sales */ secrets", "table secrets is not allowed"),
        ("SELECT id FROM sales UNION SELECT id FROM secrets", "table secrets is not allowed"),
        ("SELECT * FROM sales WHERE id IN (SELECT id FROM secrets)", "table secrets is not allowed"),
        ("SELECT upper(note) FROM secrets", "table secrets is not allowed"),
        ("SELECT * FROM otherdb.main.sales", "table otherdb.main.sales is not allowed"),
        # A CTE only hides a table inside its own scope...
        ("SELECT * FROM (WITH secrets AS (SELECT 1) SELECT * FROM secrets) a, secrets", "table secrets"),
        # ...never inside its own body unless recursive, and never before it is defined.
        ("WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets", "table secrets"),
        ("WITH a AS (SELECT * FROM secrets), secrets AS (SELECT 1) SELECT * FROM a", "table secrets"),
        ("SELECT 'pg_authid'::regclass", "is not allowed"),
        ("SELECT user", "function user is not allowed"),
        ("SELECT current_user", "function current_user is not allowed"),
        ("SELECT * FROM sales WHERE id = ?", "query parameters are not allowed"),
        ("SELECT * FROM sales WHERE", "could not be parsed"),
        ("SELECT 'unterminated", "could not be parsed"),
        ("", "exactly one statement is allowed, found 0"),
        ("SELECT " + "(" * 3000 + "1" + ")" * 3000, "could not be parsed"),  # sqlglot recursion: fail closed
        ("SELECT * FROM ROWS FROM (generate_series(1, 2))", "name a table"),
        ("SELECT 1 " + "+ 1 " * 6000, "the query is too long"),
    ],
)
def test_refuses_with_a_reason_that_names_the_problem(sql: str, reason: str, dialect: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        check(sql, dialect)
    assert reason.lower() in str(refused.value).lower()


@pytest.mark.parametrize(
    ("sql", "dialect", "reason"),
    [
        ("ATTACH DATABASE '/tmp/evil.db' AS evil", "sqlite", "not ATTACH"),
        ("PRAGMA query_only = OFF", "sqlite", "not PRAGMA"),
        ("SELECT * FROM temp.sales", "sqlite", "table temp.sales is not allowed"),
        ("SELECT * FROM public.sales", "sqlite", "table public.sales is not allowed"),
        ("SELECT * FROM main.sales", "postgres", "table main.sales is not allowed"),
        # PostgreSQL folds unquoted names but keeps quoted ones: "SALES" is another table.
        ('SELECT * FROM "SALES"', "postgres", "table SALES is not allowed"),
        ("SELECT $1", "postgres", "query parameters are not allowed"),
        ("SELECT $1", "sqlite", "unexpected name"),
        ("SELECT sqlite_version()", "sqlite", "function sqlite_version is not allowed"),
    ],
)
def test_dialect_specific_refusals(sql: str, dialect: str, reason: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        check(sql, dialect)
    assert reason in str(refused.value)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT c.region, ROUND(SUM(s.amount), 2) AS total_sales, COUNT(*) AS orders"
        " FROM sales s JOIN customers c ON c.id = s.customer_id"
        " WHERE s.order_date >= '2026-07-01' AND s.order_date < '2026-10-01'"
        " GROUP BY c.region ORDER BY total_sales DESC",
        "SELECT order_date AS updated_at, 0 AS deleted FROM sales",
        "WITH updated_at AS (SELECT customer_id FROM sales) SELECT count(*) FROM updated_at",
        "SELECT 'DROP TABLE sales; DELETE FROM customers' AS note FROM products",
        "SELECT id, RANK() OVER (PARTITION BY customer_id ORDER BY amount DESC) AS r FROM sales",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT i FROM n",
        "WITH a AS (SELECT id FROM sales), b AS (SELECT id FROM a) SELECT count(*) FROM b",
        "WITH sqlite_master AS (SELECT 1 AS x) SELECT x FROM sqlite_master",  # a CTE, whatever its name
        "SELECT count(*) FROM customers c WHERE EXISTS (SELECT 1 FROM sales s WHERE s.customer_id = c.id)",
        "SELECT id FROM sales UNION ALL SELECT id FROM customers",
        'SELECT "region" FROM "customers"',
        "SELECT count(*) FROM sales -- , secrets",
        "SELECT CAST(amount AS INTEGER), COALESCE(NULLIF(name, ''), '-') FROM sales JOIN products USING (id)",
    ],
)
def test_lets_innocent_queries_through(sql: str, dialect: str) -> None:
    assert check(sql, dialect).startswith(("SELECT", "WITH"))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_runs_what_it_checked_without_comments(dialect: str) -> None:
    # A line comment re-rendered as a block comment must not let "*/" end it early: comments are dropped.
    assert check("SELECT 1 -- */ DROP TABLE sales", dialect) == "SELECT 1 LIMIT 100"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT id FROM sales", "SELECT id FROM sales LIMIT 100"),
        ("SELECT id FROM sales LIMIT 5", "SELECT id FROM sales LIMIT 5"),
        ("SELECT id FROM sales LIMIT 5000", "SELECT id FROM sales LIMIT 100"),
        ("SELECT id FROM sales LIMIT -1", "SELECT id FROM sales LIMIT 100"),  # SQLite: -1 means no limit
        ("SELECT id FROM sales LIMIT 10 OFFSET 20", "SELECT id FROM sales LIMIT 10 OFFSET 20"),
        (
            "SELECT id FROM sales UNION SELECT id FROM customers",
            "SELECT id FROM sales UNION SELECT id FROM customers LIMIT 100",
        ),
        ("(SELECT id FROM sales)", "SELECT * FROM (SELECT id FROM sales) AS q LIMIT 100"),
    ],
)
def test_adds_or_clamps_the_row_limit(sql: str, expected: str, dialect: str) -> None:
    assert check(sql, dialect) == expected


def test_fetch_first_is_clamped_like_limit() -> None:
    assert (
        check("SELECT id FROM sales FETCH FIRST 5000 ROWS ONLY", "postgres")
        == "SELECT id FROM sales LIMIT 100"
    )


def test_tables_are_matched_case_insensitively_where_the_database_does() -> None:
    assert "FROM SALES" in check("SELECT id FROM SALES", "postgres")  # unquoted: folded to sales
    assert 'FROM "SALES"' in check('SELECT id FROM "SALES"', "sqlite")  # SQLite ignores case even quoted
