"""The demo policy's decisions, without HTTP: quarters, dates, turns and the answer's wording."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from local.emulator.policy import (
    Quarter,
    answer_from_query,
    current_date,
    last_full_quarter,
    plan_turn,
    sales_by_region_sql,
)
from local.emulator.script import MessagePlan, ToolCallsPlan

TOOLS = {"get_table_schema", "query_database"}
TODAY = date(2026, 10, 15)


@pytest.mark.parametrize(
    ("today", "start", "end"),
    [
        (date(2026, 10, 15), date(2026, 7, 1), date(2026, 10, 1)),
        (date(2026, 10, 1), date(2026, 7, 1), date(2026, 10, 1)),
        (date(2026, 9, 30), date(2026, 4, 1), date(2026, 7, 1)),
        (date(2026, 1, 5), date(2025, 10, 1), date(2026, 1, 1)),
        (date(2026, 4, 1), date(2026, 1, 1), date(2026, 4, 1)),
    ],
)
def test_last_full_quarter(today: date, start: date, end: date) -> None:
    assert last_full_quarter(today) == Quarter(start, end)


def test_quarter_label_and_last_day() -> None:
    quarter = last_full_quarter(date(2026, 1, 5))
    assert (quarter.label, quarter.last_day) == ("Q4 2025", date(2025, 12, 31))


def test_current_date_comes_from_the_instructions_else_the_fallback() -> None:
    assert current_date("Be brief.\nCurrent date: 2026-02-03\n", TODAY) == date(2026, 2, 3)
    assert current_date("Be brief.", TODAY) == TODAY
    assert current_date(None, TODAY) == TODAY
    assert current_date("Current date: 2026-02-31", TODAY) == TODAY


def test_the_sql_is_the_one_the_tools_expect() -> None:
    assert sales_by_region_sql(last_full_quarter(TODAY)) == (
        "SELECT c.region, ROUND(SUM(s.amount), 2) AS total_sales, COUNT(*) AS orders "
        "FROM sales s JOIN customers c ON c.id = s.customer_id "
        "WHERE s.order_date >= '2026-07-01' AND s.order_date < '2026-10-01' "
        "GROUP BY c.region ORDER BY total_sales DESC"
    )


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def call(name: str, call_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": json.dumps(arguments)}


def output(call_id: str, value: Any) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": json.dumps(value)}


def test_a_new_sales_question_starts_over_even_after_an_earlier_answer() -> None:
    earlier = [
        user("What was revenue last quarter?"),
        call("get_table_schema", "c1", {"table": "sales"}),
        output("c1", {}),
        call("query_database", "c2", {"query": "SELECT 1"}),
        output("c2", {"columns": [], "rows": []}),
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "..."}]},
    ]
    plan = plan_turn(
        [*earlier, user("And total sales by region?")], instructions=None, tools=TOOLS, today=TODAY
    )
    assert isinstance(plan, ToolCallsPlan)
    assert [name for name, _ in plan.calls] == ["get_table_schema", "get_table_schema"]


def test_without_the_tools_the_policy_only_acknowledges() -> None:
    plan = plan_turn(
        [user("What were total sales?")], instructions=None, tools={"get_table_schema"}, today=TODAY
    )
    assert isinstance(plan, MessagePlan)
    assert plan.text.startswith('You asked: "What were total sales?"')


def test_with_no_user_message_it_greets() -> None:
    plan = plan_turn([], instructions=None, tools=TOOLS, today=TODAY)
    assert isinstance(plan, MessagePlan)
    assert plan.text.startswith("Hello")


def test_string_content_counts_as_the_question() -> None:
    items = [{"type": "message", "role": "user", "content": "Sales please"}]
    assert isinstance(plan_turn(items, instructions=None, tools=TOOLS, today=TODAY), ToolCallsPlan)


def test_answer_lists_regions_with_totals_and_orders() -> None:
    result = {
        "columns": ["region", "total_sales", "orders"],
        "rows": [["Europe", 1500000.5, 1200], ["Asia Pacific", "7.1", 2]],
        "row_count": 2,
        "truncated": False,
    }
    assert answer_from_query(last_full_quarter(TODAY), json.dumps(result)) == (
        "Total sales by region for Q3 2026 (2026-07-01 to 2026-09-30):\n"
        "- Europe: 1,500,000.50 (1,200 orders)\n"
        "- Asia Pacific: 7.10 (2 orders)\n"
        "Altogether 1,500,007.60 from 1,202 orders."
    )


def test_answer_finds_columns_by_name() -> None:
    result = {"columns": ["orders", "region", "total_sales"], "rows": [[3, "Europe", 10]]}
    assert "- Europe: 10.00 (3 orders)" in answer_from_query(last_full_quarter(TODAY), json.dumps(result))


@pytest.mark.parametrize(
    ("tool_output", "expected"),
    [
        (
            json.dumps({"error": "query refused: not a SELECT"}),
            "The query failed: query refused: not a SELECT",
        ),
        (json.dumps({"columns": ["region"], "rows": []}), "No sales were recorded in Q3 2026"),
        ("Traceback (most recent call last)", "The query failed: the tool answered something I cannot read"),
        (
            json.dumps({"columns": ["region"], "rows": [["Europe"]]}),
            "The query failed: I could not read its rows",
        ),
        (None, "The query failed: the tool answered something I cannot read"),
    ],
)
def test_answer_explains_failures_and_empty_results(tool_output: Any, expected: str) -> None:
    assert answer_from_query(last_full_quarter(TODAY), tool_output).startswith(expected)
