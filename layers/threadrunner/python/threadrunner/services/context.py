"""What the API works with, built once per Lambda container; tests build their own."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from threadrunner import aws
from threadrunner.settings import (
    RunSettings,
    ToolSettings,
    WorkflowSettings,
    run_settings,
    storage_settings,
    tool_settings,
    workflow_settings,
)
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore


@dataclass(frozen=True)
class ApiContext:
    threads: ThreadStore
    runs: RunStore
    stepfunctions: Any
    run_settings: RunSettings
    tool_settings: ToolSettings
    workflow_settings: WorkflowSettings


@cache
def default_context() -> ApiContext:
    storage = storage_settings()
    return ApiContext(
        threads=ThreadStore(aws.table(storage.threads_table)),
        runs=RunStore(aws.table(storage.runs_table)),
        stepfunctions=aws.client("stepfunctions"),
        run_settings=run_settings(),
        tool_settings=tool_settings(),
        workflow_settings=workflow_settings(),
    )
