"""The first line of defence of ``query_database``: what the SQL says, checked with sqlglot before it runs.

``check_query`` accepts one read-only SELECT over allow-listed tables and returns the SQL to execute:
sqlglot's own rendering of what it checked (comments dropped, LIMIT added or clamped), so the database
never sees text the checker did not understand. Anything unexpected is refused: the rules are
allow-lists (tables, functions, types), and the parser failing is a refusal too.

The database enforces read-only access again on its own (see ``sqlite_guard`` and ``postgres``).
"""

from __future__ import annotations

import re
from collections.abc import Collection

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from threadrunner.tools.errors import QueryRefused

MAX_QUERY_CHARS = 20_000

# The schema unqualified names resolve to; any other schema (catalogs, attached databases) is refused.
DEFAULT_SCHEMA = {"sqlite": "main", "postgres": "public"}

# Functions by sqlglot class: sqlglot maps each dialect's spelling onto these (SQLite substr and PostgreSQL
# substring are both Substring), so one list serves both databases. Everything else is refused, which is
# how pg_sleep, set_config, nextval, lo_export, dblink, load_extension, readfile and randomblob are.
SAFE_FUNCTIONS: frozenset[type[exp.Expr]] = frozenset(
    {
        # operators sqlglot models as functions
        exp.And, exp.Or, exp.Exists, exp.Collate, exp.RegexpLike, exp.RegexpILike,
        # aggregates
        exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.GroupConcat, exp.ArrayAgg, exp.Stddev,
        exp.StddevPop, exp.StddevSamp, exp.Variance, exp.VariancePop, exp.Corr, exp.PercentileCont,
        exp.PercentileDisc, exp.Mode, exp.LogicalAnd, exp.LogicalOr,
        # window functions
        exp.RowNumber, exp.Rank, exp.DenseRank, exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue,
        exp.NthValue, exp.Ntile, exp.PercentRank, exp.CumeDist,
        # conditionals and conversions
        exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least, exp.Cast, exp.TryCast,
        # numbers
        exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Trunc, exp.Sqrt, exp.Pow, exp.Exp, exp.Ln, exp.Log,
        exp.Sign,
        # text
        exp.Lower, exp.Upper, exp.Length, exp.Substring, exp.Trim, exp.Replace, exp.StrPosition, exp.Concat,
        exp.ConcatWs, exp.Left, exp.Right, exp.Initcap, exp.SplitPart,
        # dates
        exp.CurrentDate, exp.CurrentTimestamp, exp.Date, exp.Extract, exp.TimeToStr, exp.TsOrDsToTimestamp,
        exp.TimestampTrunc, exp.DateTrunc, exp.StrToDate,
    }
)  # fmt: skip
# Functions sqlglot does not model (exp.Anonymous), by lower-case name.
SAFE_ANONYMOUS_FUNCTIONS = frozenset(
    {"total", "date", "datetime", "time", "julianday", "strftime", "unixepoch", "age", "make_date", "every"}
)
# Cast targets: plain scalar types (no regclass & co, which look things up in the catalogs).
SAFE_TYPES = frozenset(
    getattr(exp.DataType.Type, name)
    for name in (
        "BIGINT", "INT", "SMALLINT", "TINYINT", "DECIMAL", "DOUBLE", "FLOAT", "TEXT", "VARCHAR", "CHAR",
        "DATE", "DATETIME", "TIMESTAMP", "TIMESTAMPTZ", "TIME", "BOOLEAN", "INTERVAL",
    )
)  # fmt: skip
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# PostgreSQL reads these bare words as functions (SELECT user -> the role name), sqlglot as column names.
_FUNCTION_KEYWORDS = frozenset({"user", "current_role", "current_catalog", "system_user"})
# Constructs that never belong in a read-only query, wherever they appear.
_REFUSED: dict[type[exp.Expr], str] = {
    exp.DML: "only SELECT queries are allowed (found {key} inside the query)",
    exp.DDL: "only SELECT queries are allowed (found {key} inside the query)",
    exp.Command: "only SELECT queries are allowed (found {key} inside the query)",
    exp.Into: "SELECT ... INTO is not allowed",
    exp.Lock: "locking clauses (FOR UPDATE / FOR SHARE) are not allowed",
    exp.Placeholder: "query parameters are not allowed: write the values into the query",
    exp.Parameter: "query parameters are not allowed: write the values into the query",
    exp.SessionParameter: "session variables are not allowed",
    exp.Dot: "qualified function calls and field access are not allowed",
}


def check_query(sql: str, *, dialect: str, allowed_tables: Collection[str], row_limit: int) -> str:
    """Return the SQL to run for ``sql``, or raise ``QueryRefused`` naming what is not allowed."""
    if len(sql) > MAX_QUERY_CHARS:
        raise QueryRefused(f"the query is too long ({len(sql)} characters, at most {MAX_QUERY_CHARS})")
    query = _parse_one(sql, dialect)
    try:
        normalized = normalize_identifiers(query.copy(), dialect=dialect)
        allowed = {name.lower() for name in allowed_tables}
        for node in normalized.walk():
            _check_node(node, allowed, dialect)
        return _with_row_limit(query, row_limit).sql(dialect=dialect, comments=False)
    except QueryRefused:
        raise
    except Exception:  # sqlglot choking on an odd tree: fail closed
        raise QueryRefused("the query could not be checked: write it more simply") from None


def _parse_one(sql: str, dialect: str) -> exp.Query:
    try:
        statements = [statement for statement in sqlglot.parse(sql, read=dialect) if statement is not None]
    except SqlglotError as error:
        raise QueryRefused(f"the query could not be parsed: {_first_line(error)}") from None
    except Exception:  # e.g. RecursionError on deep nesting: fail closed
        raise QueryRefused("the query could not be parsed: write it more simply") from None
    if len(statements) != 1:
        raise QueryRefused(f"exactly one statement is allowed, found {len(statements)}")
    if not isinstance(statements[0], exp.Query):
        raise QueryRefused(f"only SELECT queries are allowed, not {_keyword(statements[0])}")
    return statements[0]


def _check_node(node: exp.Expr, allowed: set[str], dialect: str) -> None:
    for kind, message in _REFUSED.items():
        if isinstance(node, kind):
            raise QueryRefused(message.format(key=_keyword(node)))
    if isinstance(node, exp.Func):
        _check_function(node, dialect)
    elif isinstance(node, exp.Table):
        _check_table(node, allowed, DEFAULT_SCHEMA[dialect])
    elif isinstance(node, exp.Identifier) and not node.quoted and not _PLAIN_NAME.fullmatch(node.name):
        # SQLite reads $x, :x and @x as parameters: anything but a plain word invites parser disagreements.
        raise QueryRefused(f"unexpected name {node.name!r}: quote unusual names with double quotes")
    elif isinstance(node, exp.DataType) and node.this not in SAFE_TYPES:
        raise QueryRefused(f"type {node.sql()} is not allowed")
    elif isinstance(node, exp.ObjectIdentifier):
        raise QueryRefused(f"type {node.name} is not allowed")
    elif _is_function_keyword(node):
        raise QueryRefused(f"function {node.name} is not allowed")


def _is_function_keyword(node: exp.Expr) -> bool:
    return (
        isinstance(node, exp.Column)
        and not node.table
        and not node.this.quoted
        and node.name.lower() in _FUNCTION_KEYWORDS
    )


def _check_function(node: exp.Func, dialect: str) -> None:
    if isinstance(node, exp.Anonymous):
        if node.name.lower() not in SAFE_ANONYMOUS_FUNCTIONS:
            raise QueryRefused(f"function {node.name.lower()} is not allowed")
    elif type(node) not in SAFE_FUNCTIONS:
        # Name it as the database would: sqlglot's class names differ (sqlite_version is CurrentVersion).
        name = node.sql(dialect=dialect, comments=False).split("(", 1)[0].strip().lower()
        raise QueryRefused(f"function {name or node.sql_name().lower()} is not allowed")


def _check_table(table: exp.Table, allowed: set[str], default_schema: str) -> None:
    if not isinstance(table.this, exp.Identifier):  # FROM some_function(...): table-valued functions
        source = table.this.sql() if table.this is not None else table.sql()
        raise QueryRefused(f"reading from {source} is not allowed: name a table")
    name, schema = table.name, table.db
    qualified = ".".join(part for part in (table.catalog, schema, name) if part)
    if table.catalog or (schema and schema != default_schema):
        raise QueryRefused(f"table {qualified} is not allowed")
    if not schema and name in _visible_ctes(table):
        return
    if name not in allowed:
        raise QueryRefused(f"table {qualified} is not allowed (allowed: {', '.join(sorted(allowed))})")


def _visible_ctes(table: exp.Table) -> set[str]:
    """The CTE names ``table`` may refer to, by SQL scoping: a CTE sees the ones before it (and itself
    when recursive), the query body sees them all, and scopes nest. A name that is not visible here is
    a real table, even if a CTE elsewhere in the query carries it."""
    visible: set[str] = set()
    child: exp.Expr = table
    parent = table.parent
    while parent is not None:
        if isinstance(parent, exp.With) and isinstance(child, exp.CTE):
            siblings = list(parent.expressions)
            position = next(index for index, cte in enumerate(siblings) if cte is child)
            # Later siblings stay out even when recursive: not every database lets a CTE see them.
            visible.update(
                cte.alias_or_name for cte in siblings[: position + bool(parent.args.get("recursive"))]
            )
        else:
            with_clause = parent.args.get("with_")
            if isinstance(with_clause, exp.With) and with_clause is not child:
                visible.update(cte.alias_or_name for cte in with_clause.expressions)
        child, parent = parent, parent.parent
    return visible


def _with_row_limit(query: exp.Query, row_limit: int) -> exp.Query:
    """Add a LIMIT, or lower the one the query has to ``row_limit``."""
    if isinstance(query, exp.Subquery):  # (SELECT ...) as the whole statement
        query = exp.select("*").from_(query.as_("q"))
    current = query.args.get("limit")
    requested = current.expression if isinstance(current, exp.Limit) else None
    if isinstance(requested, exp.Literal) and requested.is_int and 0 <= int(requested.name) <= row_limit:
        return query
    query.set("limit", exp.Limit(expression=exp.Literal.number(row_limit)))
    return query


def _keyword(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
