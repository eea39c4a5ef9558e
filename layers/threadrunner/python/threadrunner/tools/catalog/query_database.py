"""query_database: one read-only SELECT, checked by the SQL policy, then run by the guarded database.

Results are data for the model, never instructions: values become plain JSON, long text cells are cut,
and rows stop at the row cap and at the output budget (``truncated`` says so).
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from threadrunner.tools.context import ToolContext
from threadrunner.tools.declaration import Capability, tool
from threadrunner.tools.errors import QueryRefused

MAX_CELL_CHARS = 500
_CUT_MARK = "…[cut]"

DESCRIPTION = (
    "Run one read-only SQL SELECT (standard SQL; SQLite or PostgreSQL) and get the rows back as JSON: "
    '{"columns", "rows", "row_count", "truncated"}. Only the tables you were given can be read. Aggregate '
    f"in SQL: long results are cut (truncated: true) and text cells stop at {MAX_CELL_CHARS} characters."
)


class QueryDatabaseArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="One SQL SELECT statement.")


class QueryResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool  # rows were left out (row cap or output size) or a cell was cut short


@tool(
    description=DESCRIPTION,
    capabilities=[Capability.database],
    example={"query": "SELECT region, COUNT(*) AS customers FROM customers GROUP BY region"},
)
def query_database(arguments: QueryDatabaseArguments, context: ToolContext) -> QueryResult:
    from threadrunner.tools.sql_policy import check_query  # on first call: sqlglot is not for model steps

    allowed = context.allowed_tables
    if not allowed:
        raise QueryRefused("this assistant has no database access")
    database = context.get_database()
    max_rows = context.settings.sql_max_rows
    # One row past the cap tells us whether the answer was cut.
    sql = check_query(
        arguments.query, dialect=database.dialect, allowed_tables=allowed, row_limit=max_rows + 1
    )
    fetched = database.run_query(
        sql, allowed_tables=allowed, max_rows=max_rows, timeout_seconds=context.settings.sql_timeout_seconds
    )
    rows = [[json_value(value) for value in row] for row in fetched.rows]
    cells_cut = any(isinstance(value, str) and value.endswith(_CUT_MARK) for row in rows for value in row)
    result = QueryResult(
        columns=fetched.columns, rows=rows, row_count=len(rows), truncated=fetched.more or cells_cut
    )
    return fit_to_budget(result, context.settings.tool_output_max_chars)


def json_value(value: Any) -> Any:
    """A JSON-safe rendering: numbers stay numbers (decimals become floats), dates ISO strings, bytes hex."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float | Decimal):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return _cut("0x" + bytes(value).hex())
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return _cut(json.dumps(value, default=str, ensure_ascii=False))
    return _cut(str(value))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + _CUT_MARK


def fit_to_budget(result: QueryResult, max_chars: int) -> QueryResult:
    """Drop trailing rows until the JSON fits in ``max_chars`` (the registry would cut it blindly)."""
    if len(result.model_dump_json()) <= max_chars:
        return result
    fits, too_many = 0, len(result.rows)
    while too_many - fits > 1:  # binary search on the number of rows kept
        middle = (fits + too_many) // 2
        candidate = result.model_copy(update={"rows": result.rows[:middle], "row_count": middle})
        if len(candidate.model_dump_json()) <= max_chars:
            fits = middle
        else:
            too_many = middle
    return result.model_copy(update={"rows": result.rows[:fits], "row_count": fits, "truncated": True})
