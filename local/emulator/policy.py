"""The emulator's default model: a small deterministic policy that answers any assistant.

It reads the conversation like a model would: the latest user message, the tool calls and outputs since
then, and what the turn gave the code interpreter (a ``Turn``: the Responses, Chat Completions and Assistants
sides of the emulator all build one). Then, in order:

1. The code interpreter was given a CSV with this question: it analyses it (``Plan.analyse_csv``: a PNG chart
   and a summary CSV).
2. The Data Analyst's tools (``get_table_schema`` and ``query_database``) and a question about sales: it
   fetches the two schemas (in one turn), runs one SQL query for the last full calendar quarter, then
   answers with the figures from the query's rows.
3. Tool calls of this turn came back: it answers quoting each output (``get_weather returned {...}``).
4. Function tools on offer: it calls, once each, the tools the question names (a word of the tool's name),
   else those whose description shares a word with the question, else every tool; arguments come from each
   tool's JSON schema and the question (``local.emulator.tool_arguments``). With the Data Analyst's two
   tools only a named tool is called (``Describe the customers table``), as other questions there are
   small talk.
5. Otherwise (no tools, a greeting): an answer that repeats the question and says what it could do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from local.emulator.script import Plan
from local.emulator.tool_arguments import arguments_for, key_words, name_words

SCHEMA_TOOL = "get_table_schema"
QUERY_TOOL = "query_database"

_CURRENT_DATE = re.compile(r"Current date:\s*(\d{4}-\d{2}-\d{2})")
_ABOUT_SALES = re.compile(r"\b(sales|revenue|sold|turnover)\b", re.IGNORECASE)
_QUOTED_OUTPUT_CHARS = 400  # of each tool output, in the answer
_REAL_MODEL = "Set OPENAI_API_KEY to talk to a real model."


@dataclass(frozen=True)
class Quarter:
    start: date
    end: date  # exclusive: the first day of the next quarter

    @property
    def label(self) -> str:
        return f"Q{(self.start.month - 1) // 3 + 1} {self.start.year}"

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)


def last_full_quarter(today: date) -> Quarter:
    """The last calendar quarter that ended before ``today``."""
    current = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    if current.month == 1:
        return Quarter(date(current.year - 1, 10, 1), current)
    return Quarter(date(current.year, current.month - 3, 1), current)


def current_date(instructions: str | None, fallback: date) -> date:
    """The engine writes ``Current date: YYYY-MM-DD`` into the instructions; else the real date."""
    found = _CURRENT_DATE.search(instructions or "")
    if found:
        try:
            return date.fromisoformat(found.group(1))
        except ValueError:
            pass
    return fallback


def sales_by_region_sql(quarter: Quarter) -> str:
    return (
        "SELECT c.region, ROUND(SUM(s.amount), 2) AS total_sales, COUNT(*) AS orders "
        "FROM sales s JOIN customers c ON c.id = s.customer_id "
        f"WHERE s.order_date >= '{quarter.start.isoformat()}' AND s.order_date < '{quarter.end.isoformat()}' "
        "GROUP BY c.region ORDER BY total_sales DESC"
    )


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str


@dataclass(frozen=True)
class FunctionTool:
    """A function tool as the model sees it: its name, description and JSON schema of its arguments."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Turn:
    """What the model reads: the latest user question, the tool calls and outputs since it, and the CSV
    the code interpreter was given with it (its file name), if any."""

    question: str | None
    calls: tuple[ToolCall, ...] = ()
    outputs: Mapping[str, Any] = field(default_factory=dict)  # call id -> the output the tool gave
    csv_file: str | None = None


def plan_turn(
    items: list[dict[str, Any]],
    *,
    instructions: str | None,
    tools: Iterable[FunctionTool | str],
    today: date,
    csv_file: str | None = None,
) -> Plan:
    """The next model turn, given every item of a Responses conversation so far (oldest first)."""
    turn = replace(turn_from_items(items), csv_file=csv_file)
    return plan_for(turn, instructions=instructions, tools=tools, today=today)


def plan_for(
    turn: Turn, *, instructions: str | None, tools: Iterable[FunctionTool | str], today: date
) -> Plan:
    """The next model turn, whichever API asks. A tool given by name alone takes no arguments."""
    offered = [FunctionTool(tool) if isinstance(tool, str) else tool for tool in tools]
    names = {tool.name for tool in offered}
    question = turn.question
    if question is None:
        return Plan.message("Hello! Ask me a question and I will do my best to answer it.")
    if turn.csv_file is not None and not turn.calls:
        return Plan.analyse_csv(f"I analysed {turn.csv_file}: here is a chart and a summary of its numbers.")
    analyst = {SCHEMA_TOOL, QUERY_TOOL} <= names
    if analyst and _ABOUT_SALES.search(question):
        return _sales_turn(turn, instructions=instructions, today=today)
    if turn.calls:
        return Plan.message(answer_from_outputs(question, turn))
    chosen = choose_tools(question, offered, broad=not analyst)
    if chosen:
        return Plan.tool_calls(
            [(tool.name, arguments_for(tool.parameters, question, today=today)) for tool in chosen]
        )
    return Plan.message(_without_tools(question, offered, analyst=analyst))


def _sales_turn(turn: Turn, *, instructions: str | None, today: date) -> Plan:
    quarter = last_full_quarter(current_date(instructions, today))
    if not any(call.name == SCHEMA_TOOL for call in turn.calls):
        return Plan.tool_calls([(SCHEMA_TOOL, {"table": "sales"}), (SCHEMA_TOOL, {"table": "customers"})])
    queries = [call for call in turn.calls if call.name == QUERY_TOOL]
    if not queries:
        return Plan.tool_calls([(QUERY_TOOL, {"query": sales_by_region_sql(quarter)})])
    return Plan.message(answer_from_query(quarter, turn.outputs.get(queries[-1].call_id)))


def choose_tools(question: str, tools: list[FunctionTool], *, broad: bool = True) -> list[FunctionTool]:
    """The tools to call for ``question``, in the order offered: those it names (a word of the tool's
    name), else (``broad``) those whose description shares a word with it, else every tool. A question
    with no word that says anything (``hi``, ``thanks``) calls none."""
    asked = key_words(question)
    if not asked:
        return []
    named = [tool for tool in tools if name_words(tool.name) & asked]
    if named or not broad:
        return named
    described = [tool for tool in tools if key_words(tool.description) & asked]
    return described or list(tools)


def answer_from_outputs(question: str, turn: Turn) -> str:
    """The answer once this turn's tool calls came back: each output quoted, errors said as such."""
    lines = [f'You asked: "{_shorten(question)}". Here is what the tools returned:']
    for call in turn.calls:
        output = turn.outputs.get(call.call_id)
        if output is None:
            lines.append(f"- {call.name} gave no output")
            continue
        result = _json_object(output)
        if result is not None and set(result) == {"error"}:
            lines.append(f"- {call.name} failed: {_shorten(str(result['error']), _QUOTED_OUTPUT_CHARS)}")
            continue
        text = text_of(output) if isinstance(output, list) else str(output)
        lines.append(f"- {call.name} returned {_shorten(text, _QUOTED_OUTPUT_CHARS)}")
    return "\n".join(lines)


def _without_tools(question: str, tools: list[FunctionTool], *, analyst: bool) -> str:
    said = f'You asked: "{_shorten(question)}". This is the emulator\'s deterministic model'
    if analyst:
        return (
            f"{said}: ask me about sales (say, total sales by region last quarter), or name a table to "
            f"describe. {_REAL_MODEL}"
        )
    if tools:
        names = ", ".join(tool.name for tool in tools)
        return f"{said}: ask a question about what my tools do ({names}) and I will call them. {_REAL_MODEL}"
    return f"{said}, and this assistant has no tools, so all I can do is repeat your question. {_REAL_MODEL}"


def turn_from_items(items: list[dict[str, Any]]) -> Turn:
    """The turn of a Responses conversation: its latest user message and the items after it."""
    question, after = _latest_question(items)
    return Turn(
        question=question,
        calls=tuple(
            ToolCall(item["call_id"], item["name"]) for item in after if item.get("type") == "function_call"
        ),
        outputs={
            item["call_id"]: item["output"] for item in after if item.get("type") == "function_call_output"
        },
    )


def text_of(content: Any) -> str:
    """The text of message content: a string, or content parts (Responses ``{"text": "..."}``, Assistants
    ``{"text": {"value": "..."}}``)."""
    if isinstance(content, str):
        return content
    texts = []
    for part in content or []:
        if isinstance(part, dict):
            text = part.get("text", "")
            texts.append(str(text.get("value", "")) if isinstance(text, dict) else str(text))
    return " ".join(texts)


def answer_from_query(quarter: Quarter, output: Any) -> str:
    """The answer to the sales question, from the ``query_database`` output the model received."""
    result = _json_object(output)
    if result is None:
        return f"The query failed: the tool answered something I cannot read ({_shorten(str(output))})."
    if "error" in result:
        return f"The query failed: {result['error']}"
    columns = [str(column) for column in result.get("columns", [])]
    rows = result.get("rows") or []
    period = f"{quarter.label} ({quarter.start.isoformat()} to {quarter.last_day.isoformat()})"
    if not rows:
        return f"No sales were recorded in {period}."

    region, total, orders = (_column(columns, name, default) for name, default in _ANSWER_COLUMNS)
    lines = [f"Total sales by region for {period}:"]
    grand_total, all_orders = Decimal(0), 0
    try:
        for row in rows:
            amount, count = Decimal(str(row[total])), int(row[orders])
            grand_total += amount
            all_orders += count
            lines.append(f"- {row[region]}: {amount:,.2f} ({count:,} orders)")
    except (IndexError, KeyError, TypeError, ValueError, ArithmeticError):
        return f"The query failed: I could not read its rows ({_shorten(json.dumps(rows, default=str))})."
    lines.append(f"Altogether {grand_total:,.2f} from {all_orders:,} orders.")
    return "\n".join(lines)


_ANSWER_COLUMNS = (("region", 0), ("total_sales", 1), ("orders", 2))


def _latest_question(items: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """The text of the latest user message, and the items after it (this turn's calls and outputs)."""
    for index in range(len(items) - 1, -1, -1):
        item = items[index]
        if item.get("type", "message") == "message" and item.get("role") == "user":
            return text_of(item.get("content")), items[index + 1 :]
    return None, items


def _json_object(output: Any) -> dict[str, Any] | None:
    if isinstance(output, list):  # content parts: the text ones carry the JSON
        output = text_of(output)
    try:
        value = json.loads(output) if isinstance(output, str) else None
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _column(columns: list[str], name: str, default: int) -> int:
    return columns.index(name) if name in columns else default


def _shorten(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
