"""The run workflow's state (run.asl.json). Small on purpose: ids, counters and the next wait."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from threadrunner.models.deferred_model import DeferredModel


class PollSettings(DeferredModel):
    """Part of the execution input, so tests (and callers of StartExecution) can choose them."""

    first_wait_seconds: int = Field(ge=0)
    max_wait_seconds: int = Field(ge=0)
    max_polls: int = Field(gt=0)
    # Check run polls about every second inside one invocation while the model call is younger than this
    # (0: it hands back to a Wait after one poll). Absent from executions started before it existed.
    check_wait_seconds: int = Field(default=0, ge=0)
    # completion "webhook": Wait for model's TimeoutSecondsPath (no webhook by then: Check run polls).
    webhook_fallback_seconds: int = Field(default=60, gt=0)


class PendingToolCall(DeferredModel):
    call_id: str
    name: str
    function: str  # the ARN of the tool's own Lambda: Run tools invokes it for this call


class RunProgress(DeferredModel):
    """What every step returns into ``$.run``: the Choice state reads ``status``."""

    status: str
    wait_seconds: int = 0
    poll_count: int = 0
    tool_calls: list[PendingToolCall] = Field(default_factory=list)


class StepError(DeferredModel):
    """What a Catch puts into ``$.error``."""

    model_config = ConfigDict(populate_by_name=True)

    error: str = Field(alias="Error")
    cause: str | None = Field(default=None, alias="Cause")


class StepInput(DeferredModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str
    settings: PollSettings
    run: RunProgress


class FinishRunInput(DeferredModel):
    """Finish run receives the whole state: the last progress and, if a step failed, the error."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    run: RunProgress
    error: StepError | None = None


class RunToolInput(DeferredModel):
    run_id: str
    call_id: str
    name: str


class RunToolOutput(DeferredModel):
    call_id: str
    is_error: bool


class FinishRunOutput(DeferredModel):
    status: str


class ExecutionInput(DeferredModel):
    """What the API passes to StartExecution."""

    run_id: str
    settings: PollSettings
    run: RunProgress
