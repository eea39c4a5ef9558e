"""The short form of a tool output that GET /v1/runs/{id} and the thread's message log show.

Tool outputs are JSON (threadrunner.tools.registry), and so is their summary: an output that fits is shown
whole; a longer one is replaced by a small JSON object that says it was cut, with the start of the output as a
string and the whole output's length. Cutting the text itself would leave broken JSON with nothing to say so.
The whole output stays where it already is: the tool-call ledger (and S3 past ``tool_output_max_chars``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from threadrunner.models.deferred_model import DeferredModel
from threadrunner.models.records import ToolCallRecord, ToolCallSummary

OUTPUT_SUMMARY_CHARS = 500


class OutputSummary(DeferredModel):
    text: str  # JSON: the whole output, or {"truncated": true, "preview": "...", "size_chars": N}
    truncated: bool = False


def summarize_output(output: str, max_chars: int = OUTPUT_SUMMARY_CHARS) -> OutputSummary:
    """``output`` itself when it has at most ``max_chars`` characters; else a JSON object of at most
    ``max_chars`` characters with as much of its start as fits (escaping may take more than one character
    per character, so the preview shrinks until the object fits)."""
    if len(output) <= max_chars:
        return OutputSummary(text=output)
    preview_chars = max_chars
    while True:
        text = json.dumps(
            {"truncated": True, "preview": output[:preview_chars], "size_chars": len(output)},
            ensure_ascii=False,
        )
        if len(text) <= max_chars or preview_chars == 0:
            return OutputSummary(text=text, truncated=True)
        preview_chars = max(0, preview_chars - (len(text) - max_chars))


def summarize_tool_calls(
    summaries: Sequence[ToolCallSummary], ledger: Sequence[ToolCallRecord]
) -> list[ToolCallSummary]:
    """The run's tool calls with the short form of each output the ledger has (calls without one as they are)."""
    outputs = {call.call_id: call for call in ledger if call.output is not None}
    summarized = []
    for summary in summaries:
        call = outputs.get(summary.call_id)
        if call is None or call.output is None:
            summarized.append(summary)
            continue
        short = summarize_output(call.output)
        summarized.append(
            summary.model_copy(
                update={
                    "output": short.text,
                    "output_truncated": short.truncated,
                    "is_error": call.is_error,
                    "approval": call.approval,
                }
            )
        )
    return summarized
