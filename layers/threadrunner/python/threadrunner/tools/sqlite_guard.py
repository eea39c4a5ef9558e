"""SQLite, enforced by SQLite itself: the guard holds whatever SQL reaches it, policy or not.

A read-only URI and ``PRAGMA query_only`` alone are not a boundary (ATTACH opens another file, and a
PRAGMA turns query_only off), so the boundary is the authorizer: SQLite asks it about every table read,
function call and operation while compiling a statement, and it allows SELECT, reads of allow-listed
tables in ``main`` and safe functions, nothing else. Limits forbid attaching and cap string sizes, and a
progress handler stops statements past their time budget (a recursive CTE never ends by itself).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Collection
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import NullPool, create_engine

from threadrunner.tools.database import Database, DatabaseUnavailable, QueryRows
from threadrunner.tools.errors import QueryRefused, ToolTimeout

logger = logging.getLogger(__name__)

# Function names as SQLite sees them once sqlglot has rendered the query, plus what SQLite calls itself
# (LIKE and GLOB are functions to it). No randomblob, zeroblob, printf, load_extension, readfile & co.
SAFE_FUNCTIONS = frozenset(
    {
        "abs", "avg", "ceil", "ceiling", "coalesce", "concat", "concat_ws", "count", "cume_dist", "date",
        "datetime", "dense_rank", "exp", "first_value", "floor", "glob", "group_concat", "ifnull", "iif",
        "instr", "julianday", "lag", "last_value", "lead", "length", "like", "ln", "log", "log10", "lower",
        "ltrim", "max", "min", "mod", "nth_value", "ntile", "nullif", "percent_rank", "pow", "power", "rank",
        "replace", "round", "row_number", "rtrim", "sign", "sqrt", "strftime", "string_agg", "substr",
        "substring", "sum", "time", "total", "trim", "trunc", "unixepoch", "upper",
    }
)  # fmt: skip
MAX_VALUE_BYTES = 1_000_000  # largest string or blob a query may build (the default is a gigabyte)
MAX_SQL_BYTES = 100_000
_PROGRESS_EVERY = 10_000  # virtual machine steps between deadline checks
_ACTIONS = {
    getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ")
    for name in (
        "ATTACH", "DETACH", "PRAGMA", "INSERT", "UPDATE", "DELETE", "TRANSACTION", "SAVEPOINT", "ANALYZE",
        "REINDEX", "ALTER_TABLE", "CREATE_TABLE", "CREATE_TEMP_TABLE", "CREATE_VIEW", "CREATE_TEMP_VIEW",
        "CREATE_INDEX", "CREATE_TEMP_INDEX", "CREATE_TRIGGER", "CREATE_TEMP_TRIGGER", "CREATE_VTABLE",
        "DROP_TABLE", "DROP_TEMP_TABLE", "DROP_VIEW", "DROP_TEMP_VIEW", "DROP_INDEX", "DROP_TEMP_INDEX",
        "DROP_TRIGGER", "DROP_TEMP_TRIGGER", "DROP_VTABLE",
    )
}  # fmt: skip


class ReadOnlyAuthorizer:
    """The ``set_authorizer`` callback; remembers why it said no, so the error can say it too."""

    def __init__(self, allowed_tables: Collection[str], existing_tables: Collection[str]) -> None:
        self.allowed_tables = frozenset(name.lower() for name in allowed_tables)
        self.existing_tables = frozenset(name.lower() for name in existing_tables)
        self.refusal: str | None = None

    def __call__(
        self, action: int, first: str | None, second: str | None, database: str | None, source: str | None
    ) -> int:
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            return self._read(first or "", second, database)
        if action == sqlite3.SQLITE_FUNCTION:
            if (second or "").lower() in SAFE_FUNCTIONS:
                return sqlite3.SQLITE_OK
            return self._deny(f"function {second} is not allowed")
        return self._deny(f"{_ACTIONS.get(action, f'operation {action}')} is not allowed: only SELECT is")

    def _read(self, table: str, column: str | None, database: str | None) -> int:
        name = table.lower()
        if database == "main" and name in self.allowed_tables:
            return sqlite3.SQLITE_OK
        # SELECT count(*) reads no column: SQLite then asks with column "" and no database, and names a CTE
        # or subquery the same way. Allow that for allow-listed tables and for names that are no table.
        counted_only = database is None and column == ""
        if counted_only and (name in self.allowed_tables or not self._is_table(name)):
            return sqlite3.SQLITE_OK
        qualified = table if database in (None, "main") else f"{database}.{table}"
        return self._deny(f"table {qualified} is not allowed")

    def _is_table(self, name: str) -> bool:
        return name in self.existing_tables or name.startswith("sqlite_")

    def _deny(self, reason: str) -> int:
        self.refusal = self.refusal or reason
        return sqlite3.SQLITE_DENY


def connect_read_only(
    path: Path, allowed_tables: Collection[str], deadline: float
) -> tuple[sqlite3.Connection, ReadOnlyAuthorizer]:
    """A fresh, guarded connection to ``path``; statements on it stop at ``deadline`` (time.monotonic)."""
    # isolation_level=None: Python never issues BEGIN by itself (the authorizer would refuse it anyway).
    connection = sqlite3.connect(_read_only_uri(path), uri=True, isolation_level=None)
    try:
        connection.execute("PRAGMA query_only = ON")
        connection.execute("PRAGMA trusted_schema = OFF")
        connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        connection.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES)
        existing = [name for (name,) in connection.execute("SELECT name FROM sqlite_master")]
        authorizer = ReadOnlyAuthorizer(allowed_tables, existing)
        connection.set_authorizer(authorizer)  # last: the statements above would be refused
        connection.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_EVERY)
    except BaseException:
        connection.close()
        raise
    return connection, authorizer


def _read_only_uri(path: Path) -> str:
    return f"file:{quote(str(path))}?mode=ro"


class SQLiteDatabase(Database):
    dialect = "sqlite"
    schema = "main"

    def __init__(self, path: Path) -> None:
        self.path = path
        # Schema inspection only: SQLAlchemy's own statements (PRAGMA table_info) on a read-only connection,
        # for table names the tool has already checked against the allow-list.
        super().__init__(
            create_engine(
                "sqlite://",
                creator=lambda: sqlite3.connect(_read_only_uri(path), uri=True),
                poolclass=NullPool,
            )
        )

    def run_query(
        self, sql: str, *, allowed_tables: Collection[str], max_rows: int, timeout_seconds: float
    ) -> QueryRows:
        try:
            connection, authorizer = connect_read_only(
                self.path, allowed_tables, time.monotonic() + timeout_seconds
            )
        except sqlite3.Error as error:
            logger.warning("cannot open the SQLite database %s: %s", self.path, error)
            raise DatabaseUnavailable() from None
        try:
            cursor = connection.execute(sql)
            rows = cursor.fetchmany(max_rows + 1)
            columns = [column[0] for column in cursor.description or ()]
        except sqlite3.Error as error:
            if authorizer.refusal:
                raise QueryRefused(authorizer.refusal) from None
            if isinstance(error, sqlite3.OperationalError) and str(error) == "interrupted":
                raise ToolTimeout(
                    f"the query ran longer than {timeout_seconds:g} s and was stopped"
                ) from None
            raise QueryRefused(f"the database could not run the query: {error}") from None
        finally:
            connection.close()
        return QueryRows(columns=columns, rows=rows[:max_rows], more=len(rows) > max_rows)
