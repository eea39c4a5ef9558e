"""What the steps work with, built once per Lambda container; tests build their own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache

from threadrunner import aws
from threadrunner.engines import Engine, engine_for
from threadrunner.engines.assistant_sync import AssistantRegistry
from threadrunner.executions import ExecutionStarter
from threadrunner.fallback import Fallback
from threadrunner.settings import (
    CostSettings,
    RunSettings,
    ToolSettings,
    UpstreamSettings,
    cost_settings,
    file_settings,
    run_settings,
    storage_settings,
    tool_settings,
    upstream_settings,
    workflow_settings,
)
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.breakers import CircuitBreakerStore
from threadrunner.stores.chat_rounds import ChatRoundStore, ChatState
from threadrunner.stores.files import FileStore
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore
from threadrunner.stores.tool_call_ledger import ToolCallLedger
from threadrunner.stores.upstream_assistants import UpstreamAssistantStore
from threadrunner.stores.usage import UsageStore


@dataclass(frozen=True)
class StepContext:
    runs: RunStore
    ledger: ToolCallLedger
    threads: ThreadStore
    engine: Callable[[str], Engine]
    run_settings: RunSettings
    tool_settings: ToolSettings
    tool_functions: Mapping[str, str]
    messages: MessageStore
    start_execution: Callable[[str], str]  # run id -> execution ARN: Finish run starts the next queued run
    # Start run moves a run whose engine has an outage to the fallback engine (None: no fallback).
    fallback: Fallback | None = None
    upstream_settings: UpstreamSettings = field(default_factory=UpstreamSettings)  # per-engine models
    files: FileStore | None = None  # the run's uploads (only runs with files need it)
    blobs: BlobStore | None = None  # where Collect outputs copies generated files
    # Finish run counts each ended run on its user's day (None: no per-user counters, e.g. in some tests).
    usage: UsageStore | None = None
    cost_settings: CostSettings = field(default_factory=CostSettings)


@cache
def default_context() -> StepContext:
    storage = storage_settings()
    runs_table = aws.table(storage.runs_table)
    threads_table = aws.table(storage.threads_table)
    costs = cost_settings()
    # Assistant definitions synced upstream (assistants engine), remembered for the container's life.
    assistants = AssistantRegistry(UpstreamAssistantStore(runs_table), run_settings().environment)
    blobs = BlobStore(aws.client("s3"), storage.bucket)
    messages = MessageStore(
        aws.table(storage.messages_table), blobs, inline_bytes=storage.message_inline_bytes
    )
    # The chat engine replays the message log and keeps its completions with the run.
    chat = ChatState(
        messages,
        ChatRoundStore(runs_table),
        run_settings().context_budget,
        blobs=blobs,
        inline_bytes=file_settings().chat_inline_bytes,
    )
    return StepContext(
        runs=RunStore(runs_table),
        ledger=ToolCallLedger(runs_table),
        threads=ThreadStore(threads_table),
        engine=lambda name: engine_for(name, upstream_settings(), assistants, chat),
        run_settings=run_settings(),
        tool_settings=tool_settings(),
        tool_functions=workflow_settings().tool_functions,
        messages=messages,
        start_execution=ExecutionStarter(
            aws.client("stepfunctions"), workflow_settings().state_machine_arn, run_settings()
        ),
        fallback=Fallback(CircuitBreakerStore(runs_table), run_settings()),
        upstream_settings=upstream_settings(),
        files=FileStore(threads_table),
        blobs=blobs,
        usage=UsageStore(threads_table, retention_days=costs.usage_retention_days),
        cost_settings=costs,
    )
