"""An OpenAI-compatible upstream on loopback: Responses, Conversations, Chat Completions, Files and
Assistants v2 (assistants, threads, messages, runs, run steps) in the real wire format, answered by a
deterministic demo model or by a per-test script.

    emulator = EmulatorServer(port=0).start()
    client = OpenAI(base_url=emulator.base_url, api_key="anything")
    emulator.script(Plan.tool_calls([("get_table_schema", {"table": "sales"})]), Plan.message("Done."))
"""

from local.emulator.exchange import Exchange
from local.emulator.script import (
    FailPlan,
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
    "HttpErrorPlan",
    "IncompletePlan",
    "MessagePlan",
    "NeverFinishesPlan",
    "Plan",
    "StaysQueuedPlan",
    "ToolCallsPlan",
]
