"""PostgreSQL, enforced by PostgreSQL itself: the guard holds whatever SQL reaches it, policy or not.

A READ ONLY transaction alone is not a boundary: a simple-protocol query ``SELECT 1; COMMIT; <write>``
ends it, and ``set_config(..., false)`` outlives it on a pooled connection. So each query runs
- as one statement through the extended protocol (``prepare=True``: the server refuses a second one),
- inside a READ ONLY transaction with a local ``statement_timeout``,
- on a connection reset with ``DISCARD ALL`` whenever the pool hands it out,
- as a role that may only SELECT the allow-listed tables (docs/sql-read-only-role.sql): the real boundary.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

import psycopg
from sqlalchemy import URL, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from threadrunner.tools.database import Database, DatabaseUnavailable, QueryRows
from threadrunner.tools.errors import QueryRefused, ToolTimeout

logger = logging.getLogger(__name__)

_CONNECT_TIMEOUT_SECONDS = 5


class PostgresDatabase(Database):
    dialect = "postgres"
    schema = "public"

    def __init__(self, url: URL) -> None:
        engine = create_engine(
            url.set(drivername="postgresql+psycopg"),
            pool_size=1,  # a Lambda runs one query at a time
            max_overflow=4,
            pool_pre_ping=True,  # connections go stale while a Lambda sleeps between invocations
            pool_recycle=300,
            connect_args={
                "connect_timeout": _CONNECT_TIMEOUT_SECONDS,
                "application_name": "threadrunner-sql-tool",
                # A default for the session too, in case anything runs outside our transaction.
                "options": "-c default_transaction_read_only=on",
            },
        )
        event.listen(engine, "checkout", _fresh_session)
        super().__init__(engine)

    def run_query(
        self, sql: str, *, allowed_tables: Collection[str], max_rows: int, timeout_seconds: float
    ) -> QueryRows:
        # allowed_tables is enforced by the role's privileges, not here: the server knows best what it grants.
        try:
            pooled = self.engine.raw_connection()
        except SQLAlchemyError as error:
            logger.warning("cannot connect to PostgreSQL: %s", error)
            raise DatabaseUnavailable() from None
        connection: psycopg.Connection[Any] = pooled.driver_connection  # type: ignore[assignment]
        try:
            with connection.cursor() as cursor:
                # Opens the transaction, READ ONLY because the session says so (see _fresh_session).
                cursor.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_seconds * 1000))}")
                cursor.execute(sql, prepare=True)
                if cursor.description is None:  # not a query: nothing to return
                    return QueryRows(columns=[], rows=[], more=False)
                columns = [column.name for column in cursor.description]
                rows = cursor.fetchmany(max_rows + 1)
        except psycopg.errors.QueryCanceled:
            raise ToolTimeout(f"the query ran longer than {timeout_seconds:g} s and was stopped") from None
        except psycopg.Error as error:
            raise QueryRefused(f"the database refused the query: {_message(error)}") from None
        finally:
            _end(connection, pooled)
        return QueryRows(columns=columns, rows=rows[:max_rows], more=len(rows) > max_rows)


def _fresh_session(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    """Every checkout starts from a clean session: nothing a previous query set survives."""
    connection: psycopg.Connection[Any] = dbapi_connection
    connection.autocommit = True  # DISCARD ALL cannot run inside a transaction
    connection.execute("DISCARD ALL")
    connection.autocommit = False
    connection.read_only = True


def _end(connection: psycopg.Connection[Any], pooled: Any) -> None:
    try:
        connection.rollback()
    except psycopg.Error:
        pooled.invalidate()  # broken: the pool must not hand it out again
    finally:
        pooled.close()


def _message(error: psycopg.Error) -> str:
    """The server's one-line reason (e.g. "permission denied for table x"), without context or hints."""
    primary = error.diag.message_primary if error.diag else None
    return (primary or str(error).strip().splitlines()[0] or type(error).__name__)[:300]
