"""What the API works with, built once per Lambda container; tests build their own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from threadrunner import aws
from threadrunner.compat.assistant_store import CompatAssistantStore
from threadrunner.compat.thread_store import CompatThreadStore
from threadrunner.executions import ExecutionStarter
from threadrunner.files.urls import FileUrls
from threadrunner.idempotency import IdempotentRequests
from threadrunner.settings import (
    ApiSettings,
    CleanupSettings,
    CostSettings,
    FileSettings,
    OperatorSettings,
    RunSettings,
    ToolSettings,
    WorkflowSettings,
    api_settings,
    cleanup_settings,
    cost_settings,
    file_settings,
    operator_settings,
    run_settings,
    storage_settings,
    tool_settings,
    workflow_settings,
)
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.cleanups import CleanupLedger
from threadrunner.stores.files import FileStore
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.rate_limits import RateLimitStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore
from threadrunner.stores.tool_call_ledger import ToolCallLedger
from threadrunner.stores.usage import UsageStore


@dataclass(frozen=True)
class ApiContext:
    threads: ThreadStore
    runs: RunStore
    ledger: ToolCallLedger  # the runs' tool calls (client outputs and approvals are answered into it)
    messages: MessageStore
    cleanups: CleanupLedger
    start_execution: Callable[[str], str]  # run id -> execution ARN (executions.ExecutionStarter)
    # Deletes are handed to the delete_threads Lambda (asynchronous invoke): the API never talks upstream.
    lambda_client: Any
    run_settings: RunSettings
    tool_settings: ToolSettings
    workflow_settings: WorkflowSettings
    cleanup_settings: CleanupSettings
    files: FileStore
    file_urls: FileUrls  # presigned POST (uploads) and GET (generated files)
    file_settings: FileSettings
    usage: UsageStore
    cost_settings: CostSettings
    operator_settings: OperatorSettings
    api_settings: ApiSettings
    idempotency: IdempotentRequests  # Idempotency-Key on the creating POSTs
    rate_limits: RateLimitStore
    # The Assistants-compatible API's own items (threadrunner/compat): users' assistants, threads' extras.
    compat_assistants: CompatAssistantStore
    compat_threads: CompatThreadStore
    blobs: BlobStore  # the bucket (the compatible API's uploads and downloads)


@cache
def default_context() -> ApiContext:
    storage = storage_settings()
    threads_table = aws.table(storage.threads_table)
    blobs = BlobStore(aws.client("s3"), storage.bucket)
    return ApiContext(
        threads=ThreadStore(threads_table),
        runs=RunStore(aws.table(storage.runs_table)),
        ledger=ToolCallLedger(aws.table(storage.runs_table)),
        messages=MessageStore(
            aws.table(storage.messages_table),
            blobs,
            inline_bytes=storage.message_inline_bytes,
        ),
        cleanups=CleanupLedger(threads_table),
        start_execution=ExecutionStarter(
            aws.client("stepfunctions"), workflow_settings().state_machine_arn, run_settings()
        ),
        lambda_client=aws.client("lambda"),
        run_settings=run_settings(),
        tool_settings=tool_settings(),
        workflow_settings=workflow_settings(),
        cleanup_settings=cleanup_settings(),
        files=FileStore(threads_table),
        file_urls=FileUrls(aws.presigning_s3(file_settings().s3_endpoint_url), storage.bucket),
        file_settings=file_settings(),
        usage=UsageStore(threads_table, retention_days=cost_settings().usage_retention_days),
        cost_settings=cost_settings(),
        operator_settings=operator_settings(),
        api_settings=api_settings(),
        idempotency=IdempotentRequests(
            aws.table(storage.idempotency_table),
            aws.client("dynamodb"),
            expires_after_seconds=api_settings().idempotency_expires_seconds,
        ),
        rate_limits=RateLimitStore(threads_table),
        compat_assistants=CompatAssistantStore(threads_table),
        compat_threads=CompatThreadStore(threads_table),
        blobs=blobs,
    )
