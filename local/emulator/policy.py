"""The demo model: a small deterministic policy that answers the Data Analyst's sales question.

It reads the conversation like a model would: the latest user message, and the tool calls and outputs
since then (a ``Turn``: the Responses and the Assistants side of the emulator both build one). Asked about
sales with ``get_table_schema`` and ``query_database`` on offer, it fetches the two schemas (in one turn),
then runs one SQL query for the last full calendar quarter, then answers with the figures from the
query's rows. Anything else gets a short acknowledgement.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from local.emulator.script import Plan

SCHEMA_TOOL = "get_table_schema"
QUERY_TOOL = "query_database"

_CURRENT_DATE = re.compile(r"Current date:\s*(\d{4}-\d{2}-\d{2})")
_ABOUT_SALES = re.compile(r"\b(sales|revenue|sold|turnover)\b", re.IGNORECASE)


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
class Turn:
    """What the model reads: the latest user question, and the tool calls and outputs since it."""

    question: str | None
    calls: tuple[ToolCall, ...] = ()
    outputs: Mapping[str, Any] = field(default_factory=dict)  # call id -> the output the tool gave


def plan_turn(items: list[dict[str, Any]], *, instructions: str | None, tools: set[str], today: date) -> Plan:
    """The next model turn, given every item of a Responses conversation so far (oldest first)."""
    return plan_for(turn_from_items(items), instructions=instructions, tools=tools, today=today)


def plan_for(turn: Turn, *, instructions: str | None, tools: set[str], today: date) -> Plan:
    """The next model turn, whichever API asks."""
    question = turn.question
    if question is None:
        return Plan.message("Hello! Ask me a question and I will do my best to answer it.")
    if not ({SCHEMA_TOOL, QUERY_TOOL} <= tools and _ABOUT_SALES.search(question)):
        return Plan.message(f'You asked: "{_shorten(question)}". I can only answer questions about sales.')

    quarter = last_full_quarter(current_date(instructions, today))
    if not any(call.name == SCHEMA_TOOL for call in turn.calls):
        return Plan.tool_calls([(SCHEMA_TOOL, {"table": "sales"}), (SCHEMA_TOOL, {"table": "customers"})])
    queries = [call for call in turn.calls if call.name == QUERY_TOOL]
    if not queries:
        return Plan.tool_calls([(QUERY_TOOL, {"query": sales_by_region_sql(quarter)})])
    return Plan.message(answer_from_query(quarter, turn.outputs.get(queries[-1].call_id)))


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
