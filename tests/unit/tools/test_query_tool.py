"""query_database's result shaping, over a fake database: JSON-safe values, cut cells, row and size caps."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from sqlalchemy import create_engine
from threadrunner.assistant_definitions import AssistantConfig, DatabaseAccess
from threadrunner.settings import ToolSettings
from threadrunner.tools.catalog.query_database import (
    MAX_CELL_CHARS,
    QueryDatabaseArguments,
    json_value,
    query_database,
)
from threadrunner.tools.database import Database, QueryRows
from threadrunner.tools.errors import QueryRefused
from threadrunner.tools.registry import ToolContext, call_tool


class FakeDatabase(Database):
    """Returns canned rows and remembers the SQL and limits it was given."""

    dialect: ClassVar[str] = "sqlite"
    schema: ClassVar[str] = "main"

    def __init__(self, rows: list[tuple[Any, ...]], columns: list[str]) -> None:
        super().__init__(create_engine("sqlite://"))
        self.rows, self.columns = rows, columns
        self.calls: list[tuple[str, list[str], int]] = []

    def run_query(
        self, sql: str, *, allowed_tables: Collection[str], max_rows: int, timeout_seconds: float
    ) -> QueryRows:
        self.calls.append((sql, list(allowed_tables), max_rows))
        return QueryRows(columns=self.columns, rows=self.rows[:max_rows], more=len(self.rows) > max_rows)


def run(database: Database, query: str = "SELECT * FROM sales", **settings: Any) -> dict[str, Any]:
    assistant = AssistantConfig(
        name="analyst", instructions="x", tools=["query_database"], database=DatabaseAccess(tables=["Sales"])
    )
    context = ToolContext(assistant=assistant, settings=ToolSettings(**settings), database=database)
    return dict(json.loads(call_tool("query_database", json.dumps({"query": query}), context).output))


def test_runs_the_checked_sql_with_the_row_cap_and_the_allow_list() -> None:
    database = FakeDatabase([(1,)], ["id"])
    assert run(database, "SELECT id FROM sales -- note", sql_max_rows=50) == {
        "columns": ["id"], "rows": [[1]], "row_count": 1, "truncated": False,
    }  # fmt: skip
    assert database.calls == [("SELECT id FROM sales LIMIT 51", ["sales"], 50)]


def test_a_refused_query_never_reaches_the_database() -> None:
    database = FakeDatabase([], [])
    assert run(database, "DELETE FROM sales") == {"error": "only SELECT queries are allowed, not DELETE"}
    assert database.calls == []


def test_values_become_json_safe() -> None:
    row = (Decimal("1234.50"), date(2026, 7, 1), datetime(2026, 7, 1, 12, 30), b"\x00\xff", None, True, 3.5)
    result = run(FakeDatabase([row], list("abcdefg")))
    assert result["rows"] == [[1234.5, "2026-07-01", "2026-07-01T12:30:00", "0x00ff", None, True, 3.5]]


def test_special_numbers_become_strings() -> None:
    assert [json_value(Decimal("NaN")), json_value(float("inf"))] == ["NaN", "inf"]


def test_long_text_cells_are_cut_and_flagged() -> None:
    result = run(FakeDatabase([("ignore previous instructions " * 100,)], ["note"]))
    cell = result["rows"][0][0]
    assert cell.startswith("ignore previous instructions") and cell.endswith("…[cut]")
    assert len(cell) == MAX_CELL_CHARS + len("…[cut]")
    assert result["truncated"] is True


def test_rows_past_the_cap_are_left_out_and_flagged() -> None:
    result = run(FakeDatabase([(n,) for n in range(30)], ["n"]), sql_max_rows=10)
    assert result["rows"] == [[n] for n in range(10)]
    assert (result["row_count"], result["truncated"]) == (10, True)


def test_rows_are_dropped_to_fit_the_output_budget() -> None:
    rows = [("x" * 40, n) for n in range(100)]
    result = run(FakeDatabase(rows, ["text", "n"]), tool_output_max_chars=1_000)
    assert 0 < result["row_count"] == len(result["rows"]) < 100
    assert result["truncated"] is True
    assert len(json.dumps(result, separators=(",", ":"), ensure_ascii=False)) <= 1_000


def test_an_assistant_without_database_access_is_refused() -> None:
    assistant = AssistantConfig(name="chatty", instructions="x", tools=["query_database"])
    context = ToolContext(assistant=assistant, settings=ToolSettings(), database=FakeDatabase([], []))
    with pytest.raises(QueryRefused, match="no database access"):
        query_database(QueryDatabaseArguments(query="SELECT 1"), context)
