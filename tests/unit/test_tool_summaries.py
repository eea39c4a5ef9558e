"""Tool-output summaries (GET /v1/runs/{id}, the message log): valid JSON whatever the output, within 500
characters, and a long output says it was cut, how long it was, and shows its start."""

from __future__ import annotations

import json

import pytest
from threadrunner.models.records import ToolCallRecord, ToolCallSummary
from threadrunner.tool_summaries import OUTPUT_SUMMARY_CHARS, summarize_output, summarize_tool_calls

ROWS = json.dumps({"columns": ["region", "total"], "rows": [[f"region {n}", n * 1.5] for n in range(200)]})


def test_an_output_that_fits_is_shown_whole() -> None:
    output = json.dumps({"columns": ["region"], "rows": [["North"]], "truncated": False})
    summary = summarize_output(output)
    assert (summary.text, summary.truncated) == (output, False)
    exact = json.dumps({"text": "x" * (OUTPUT_SUMMARY_CHARS - 12)})
    assert len(exact) == OUTPUT_SUMMARY_CHARS and summarize_output(exact).text == exact


@pytest.mark.parametrize(
    "output",
    [
        ROWS,
        json.dumps({"text": '"quoted" \\ back\\slashed ' * 200}),  # every character escaped once more
        json.dumps({"text": "\x01\x02\x1f" * 300}),  # control characters: six characters each once escaped
        json.dumps({"text": "café ☕ 🚀 " * 300}, ensure_ascii=False),
        json.dumps({"error": "e" * 600}),
        "x" * 10_000,
    ],
    ids=["rows", "quotes", "control", "unicode", "error", "not-json"],
)
def test_a_long_output_becomes_valid_json_that_says_it_was_cut(output: str) -> None:
    summary = summarize_output(output)
    assert summary.truncated
    assert len(summary.text) <= OUTPUT_SUMMARY_CHARS
    shown = json.loads(summary.text)  # valid JSON, not a cut in the middle of a string
    assert set(shown) == {"truncated", "preview", "size_chars"}
    assert shown["truncated"] is True and shown["size_chars"] == len(output)
    assert output.startswith(shown["preview"]) and len(shown["preview"]) >= 50


def test_the_runs_tool_calls_take_the_ledgers_outputs_short_and_flagged() -> None:
    ledger = [
        ToolCallRecord(
            run_id="run_1", call_id="a", round=0, name="query_database", arguments="{}", output=ROWS
        ),
        ToolCallRecord(
            run_id="run_1",
            call_id="b",
            round=0,
            name="get_table_schema",
            arguments="{}",
            output='{"error": "no"}',
            is_error=True,
        ),
        ToolCallRecord(run_id="run_1", call_id="c", round=1, name="query_database", arguments="{}"),
    ]
    summaries = [ToolCallSummary(call_id=call.call_id, name=call.name, arguments="{}") for call in ledger]
    long, failed, waiting = summarize_tool_calls(summaries, ledger)
    assert long.output_truncated and json.loads(long.output or "")["size_chars"] == len(ROWS)
    assert (failed.output, failed.output_truncated, failed.is_error) == ('{"error": "no"}', False, True)
    assert waiting == summaries[2]  # no output yet: as it was
