"""An OpenAI-compatible upstream on loopback: Responses (with the hosted file_search, web_search and mcp
tools), Conversations, Chat Completions, Files, Vector stores and Assistants v2 (assistants, threads,
messages, runs, run steps) in the real wire format, answered by a deterministic demo model or by a per-test
script.

    emulator = EmulatorServer(port=0).start()
    client = OpenAI(base_url=emulator.base_url, api_key="anything")
    emulator.script(Plan.tool_calls([("get_table_schema", {"table": "sales"})]), Plan.message("Done."))
"""

from local.emulator.exchange import Exchange
from local.emulator.script import (
    FailPlan,
    HostedToolsPlan,
    HttpErrorPlan,
    IncompletePlan,
    MessagePlan,
    NeverFinishesPlan,
    Plan,
    StaysQueuedPlan,
    ToolCallsPlan,
)
from local.emulator.server import EmulatorServer

__all__ = [
    "EmulatorServer",
    "Exchange",
    "FailPlan",
    "HostedToolsPlan",
    "HttpErrorPlan",
    "IncompletePlan",
    "MessagePlan",
    "NeverFinishesPlan",
    "Plan",
    "StaysQueuedPlan",
    "ToolCallsPlan",
]
