"""The demo policy's decisions, without HTTP: quarters, dates, turns and the answer's wording; any other
assistant's tools, called with arguments their JSON schemas accept; a CSV for the code interpreter."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from threadrunner.tools.registry import TOOLS as REGISTERED

from local.emulator.policy import (
    FunctionTool,
    Quarter,
    ToolCall,
    Turn,
    answer_from_query,
    current_date,
    last_full_quarter,
    plan_for,
    plan_turn,
    sales_by_region_sql,
)
from local.emulator.script import AnalyseCsvPlan, MessagePlan, ToolCallsPlan
from local.emulator.tool_arguments import arguments_for, pattern_example

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


def test_with_one_of_the_analysts_tools_a_sales_question_is_not_the_sales_flow() -> None:
    # Given only get_table_schema (not the Data Analyst's pair), named with no description or schema
    plan = plan_turn(
        [user("What were total sales?")], instructions=None, tools={"get_table_schema"}, today=TODAY
    )
    # Then it is called like any assistant's tool, once, with what its (empty) schema asks for
    assert isinstance(plan, ToolCallsPlan)
    assert plan.calls == (("get_table_schema", {}),)


def test_the_analysts_tools_answer_small_talk_without_calling_them() -> None:
    plan = plan_turn([user("Who are you?")], instructions=None, tools=TOOLS, today=TODAY)
    assert isinstance(plan, MessagePlan)
    assert plan.text.startswith('You asked: "Who are you?"') and "sales" in plan.text


def test_the_analysts_tools_are_called_when_the_question_names_one() -> None:
    tools = [tool.spec() for tool in REGISTERED.values()]
    offered = [FunctionTool(t.name, t.description, t.parameters) for t in tools]
    plan = plan_turn([user("Describe the customers table")], instructions=None, tools=offered, today=TODAY)
    assert isinstance(plan, ToolCallsPlan)
    assert plan.calls == (("get_table_schema", {"table": "customers"}),)


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


# Any assistant: the tools' JSON schemas decide the arguments, the question picks the tools.

WEATHER = FunctionTool(
    "get_weather",
    "The current weather in a city.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 2, "description": "The city, e.g. London."},
            "units": {"type": "string", "enum": ["metric", "imperial"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "units", "days"],
        "additionalProperties": False,
    },
)
CLOCK = FunctionTool(
    "get_local_time",
    "The local time somewhere.",
    {
        "type": "object",
        "properties": {"timezone": {"type": "string", "pattern": r"^[A-Z][a-z]+/[A-Z][a-z_]+$"}},
        "required": ["timezone"],
        "additionalProperties": False,
    },
)

SCHEMAS: dict[str, dict[str, Any]] = {
    "scalars and formats": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 3, "maxLength": 8},
            "email": {"type": "string", "format": "email"},
            "day": {"type": "string", "format": "date"},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "count": {"type": "integer", "minimum": 10, "multipleOf": 5},
            "negative": {"type": "integer", "maximum": -3},
            "flag": {"type": "boolean"},
            "nothing": {"type": "null"},
            "fixed": {"const": "v1"},
        },
        "required": ["name", "email", "day", "ratio", "count", "negative", "flag", "nothing", "fixed"],
        "additionalProperties": False,
    },
    "patterns": {
        "type": "object",
        "properties": {
            "sku": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
            "slug": {"type": "string", "pattern": r"^[a-z0-9]+(?:-[a-z0-9]+)*$", "minLength": 5},
            "code": {"type": "string", "pattern": r"^(EU|US)_[0-9]{2,}$"},
        },
        "required": ["sku", "slug", "code"],
    },
    "nested objects and arrays": {
        "type": "object",
        "properties": {
            "filter": {
                "type": "object",
                "properties": {
                    "field": {"type": "string", "enum": ["region", "product"]},
                    "values": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 2,
                        "uniqueItems": True,
                    },
                },
                "required": ["field", "values"],
                "additionalProperties": False,
            },
            "points": {"type": "array", "items": {"type": "array", "prefixItems": [{"type": "number"}] * 2}},
            "tags": {"type": "array", "items": {"type": "integer"}, "maxItems": 0},
        },
        "required": ["filter", "points", "tags"],
        "additionalProperties": False,
    },
    "refs, unions and nullables (as pydantic writes them)": {
        "$defs": {
            "Range": {
                "type": "object",
                "properties": {"start": {"type": "string", "format": "date-time"}, "end": {"type": "string"}},
                "required": ["start"],
            }
        },
        "type": "object",
        "properties": {
            "period": {"$ref": "#/$defs/Range"},
            "limit": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
            "mode": {"oneOf": [{"type": "string", "enum": ["fast"]}, {"type": "integer"}]},
            "both": {
                "allOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]}, {"required": ["b"]}]
            },
            "kind": {"type": ["null", "string"], "default": "summary"},
        },
        "required": ["period", "limit", "mode", "both", "kind"],
    },
    "no arguments": {"type": "object", "properties": {}, "additionalProperties": False},
}


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
@pytest.mark.parametrize("question", ["What is the weather in New York for 3 days?", "", "hi 0.5 -7 12"])
def test_generated_arguments_validate_against_their_schema(schema: dict[str, Any], question: str) -> None:
    arguments = arguments_for(schema, question, today=TODAY)
    Draft202012Validator.check_schema(schema)
    assert list(Draft202012Validator(schema).iter_errors(arguments)) == [], arguments
    # and they are the same every time
    assert arguments_for(schema, question, today=TODAY) == arguments


@pytest.mark.parametrize("tool", [*REGISTERED.values()], ids=lambda tool: tool.name)
def test_arguments_for_the_registered_tools_pass_their_own_argument_models(tool: Any) -> None:
    arguments = arguments_for(tool.spec().parameters, "Which columns has the products table?", today=TODAY)
    tool.arguments.model_validate(arguments)


def test_arguments_come_from_the_question_where_the_schema_leaves_a_choice() -> None:
    arguments = arguments_for(
        WEATHER.parameters, "Weather in New York for 3 days, imperial please", today=TODAY
    )
    assert arguments == {"city": "New York", "units": "imperial", "days": 3}
    # Without a name in the question, the description's example; out-of-bounds numbers are not taken
    assert arguments_for(WEATHER.parameters, "what about 12 days", today=TODAY) == {
        "city": "London",
        "units": "metric",
        "days": 1,
    }


@pytest.mark.parametrize(
    "pattern", [r"^[A-Z]{3}-\d{4}$", r"^\w+@\w+\.com$", r"(foo|bar)+\d?", r"[^a-z]{2,}", r"^v\d+(\.\d+){2}$"]
)
def test_simple_patterns_get_a_string_they_match(pattern: str) -> None:
    example = pattern_example(pattern)
    assert example is not None and re.search(pattern, example)


def test_a_back_reference_is_not_simple() -> None:
    assert pattern_example(r"^(a)\1$") is None


def test_any_assistant_calls_the_tools_its_question_names_then_quotes_their_outputs() -> None:
    # Given an assistant with two tools and a question naming one of them
    first = plan_turn(
        [user("What's the weather in Paris?")], instructions=None, tools=[WEATHER, CLOCK], today=TODAY
    )
    assert isinstance(first, ToolCallsPlan)
    assert first.calls == (("get_weather", {"city": "Paris", "units": "metric", "days": 1}),)
    # When the output comes back, the answer quotes it
    items = [
        user("What's the weather in Paris?"),
        call("get_weather", "w1", first.calls[0][1]),
        output("w1", {"temperature_c": 21, "sky": "clear"}),
    ]
    answer = plan_turn(items, instructions=None, tools=[WEATHER, CLOCK], today=TODAY)
    assert isinstance(answer, MessagePlan)
    assert 'get_weather returned {"temperature_c": 21, "sky": "clear"}' in answer.text


def test_a_question_naming_no_tool_calls_every_tool_and_errors_are_said_as_such() -> None:
    first = plan_turn([user("Plan my trip to Rome")], instructions=None, tools=[WEATHER, CLOCK], today=TODAY)
    assert isinstance(first, ToolCallsPlan)
    assert [name for name, _ in first.calls] == ["get_weather", "get_local_time"]
    for (_, arguments), tool in zip(first.calls, (WEATHER, CLOCK), strict=True):
        assert list(Draft202012Validator(dict(tool.parameters or {})).iter_errors(arguments)) == []
    turn = Turn(
        question="Plan my trip to Rome",
        calls=(ToolCall("a", "get_weather"), ToolCall("b", "get_local_time")),
        outputs={"a": json.dumps({"error": "city not found"}), "b": '"12:00"'},
    )
    answer = plan_for(turn, instructions=None, tools=[WEATHER, CLOCK], today=TODAY)
    assert isinstance(answer, MessagePlan)
    assert "- get_weather failed: city not found" in answer.text
    assert '- get_local_time returned "12:00"' in answer.text


def test_a_description_match_picks_the_tool_when_no_name_does() -> None:
    plan = plan_turn(
        [user("What time is it in Tokyo?")], instructions=None, tools=[WEATHER, CLOCK], today=TODAY
    )
    assert isinstance(plan, ToolCallsPlan)
    assert [name for name, _ in plan.calls] == ["get_local_time"]


@pytest.mark.parametrize("tools", [[], [WEATHER]], ids=["no tools", "a greeting"])
def test_without_tools_or_with_small_talk_it_answers_repeating_the_question(
    tools: list[FunctionTool],
) -> None:
    plan = plan_turn([user("hi")], instructions=None, tools=tools, today=TODAY)
    assert isinstance(plan, MessagePlan)
    assert plan.text.startswith('You asked: "hi"') and "only answer questions about sales" not in plan.text


def test_a_csv_for_the_code_interpreter_is_analysed_before_anything_else() -> None:
    plan = plan_turn(
        [user("What were total sales?")], instructions=None, tools=TOOLS, today=TODAY, csv_file="q.csv"
    )
    assert isinstance(plan, AnalyseCsvPlan) and "q.csv" in plan.text
    # once the turn has tool calls, a CSV no longer starts over
    turn = Turn(
        question="Chart it", calls=(ToolCall("c", "get_weather"),), outputs={"c": "{}"}, csv_file="q.csv"
    )
    assert isinstance(plan_for(turn, instructions=None, tools=[WEATHER], today=TODAY), MessagePlan)
