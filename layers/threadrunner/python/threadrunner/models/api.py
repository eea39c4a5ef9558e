"""The HTTP API's bodies. Requests forbid unknown fields, so a typo is a 422 that names it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from threadrunner.models.records import RunError, RunRecord, ThreadRecord, Usage


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CreateThreadRequest(_Request):
    assistant: str = Field(
        min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$", examples=["data-analyst"]
    )
    purpose: str = Field(
        default="default", min_length=1, max_length=100, pattern=r"^[\w .:/-]+$", examples=["weekly-report"]
    )


class CreateRunRequest(_Request):
    message: str = Field(min_length=1, max_length=32_000)


class ThreadOut(BaseModel):
    id: str
    assistant: str
    purpose: str
    created_at: datetime
    last_activity_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, thread: ThreadRecord) -> ThreadOut:
        return cls(
            id=thread.id,
            assistant=thread.assistant,
            purpose=thread.purpose,
            created_at=thread.created_at,
            last_activity_at=thread.last_activity_at,
            expires_at=datetime.fromtimestamp(thread.expires_at, tz=thread.created_at.tzinfo),
        )


class ToolCallOut(BaseModel):
    name: str
    arguments: str
    output: str | None


class ExecutionOut(BaseModel):
    arn: str
    console_url: str


class RunOut(BaseModel):
    id: str
    thread_id: str
    assistant: str
    status: str
    answer: str | None
    tool_calls: list[ToolCallOut]
    usage: Usage
    error: RunError | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    execution: ExecutionOut | None

    @classmethod
    def of(cls, run: RunRecord, region: str) -> RunOut:
        execution = None
        if run.execution_arn:
            execution = ExecutionOut(
                arn=run.execution_arn,
                console_url=(
                    f"https://{region}.console.aws.amazon.com/states/home?region={region}"
                    f"#/v2/executions/details/{run.execution_arn}"
                ),
            )
        return cls(
            id=run.id,
            thread_id=run.thread_id,
            assistant=run.assistant,
            status=run.status,
            answer=run.answer,
            tool_calls=[
                ToolCallOut(name=c.name, arguments=c.arguments, output=c.output) for c in run.tool_calls
            ],
            usage=run.usage,
            error=run.error,
            created_at=run.created_at,
            started_at=run.started_at,
            completed_at=run.completed_at,
            execution=execution,
        )


class ErrorOut(BaseModel):
    """Every error the API answers: a code, a message and, for bad input, the field."""

    code: str
    message: str
    field: str | None = None
    active_run_id: str | None = None
