"""Each API operation as data: method, path, query, body and the model of its answer. The sync and the async
client send the same calls, so the two differ only in how they wait for the network.

Bodies are built with ``model_construct``: the API checks them, against the deployment's own limits, and
answers a 422 naming the field (InvalidRequestError), the one way a caller learns of bad input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from threadrunner.models.api import CreatedFileOut, CreateFileRequest, CreateThreadRequest, FileOut, ThreadOut
from threadrunner.models.api_runs import (
    ApprovalIn,
    ApprovalsRequest,
    CreateRunRequest,
    RunOut,
    RunPage,
    RunTraceOut,
    SubmitToolOutputsRequest,
    ToolOutputIn,
)
from threadrunner.models.records import FilePurpose
from threadrunner.models.run_events import RunEventPage
from threadrunner.models.usage import UsageOut

Answer = TypeVar("Answer", bound=BaseModel)

# The longest long poll the events route takes (its ``wait``, seconds: inside API Gateway's 30 s).
MAX_EVENT_WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class ApiCall(Generic[Answer]):
    method: str
    path: str
    answer: type[Answer]
    query: dict[str, str] = field(default_factory=dict)
    body: BaseModel | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # A long poll holds the answer back this long: the read timeout grows by as much.
    holds_seconds: float = 0

    def json_body(self) -> Any:
        return None if self.body is None else self.body.model_dump(mode="json", exclude_none=True)


def _query(**values: object) -> dict[str, str]:
    return {name.rstrip("_"): str(value) for name, value in values.items() if value is not None}


def get_or_create_thread(assistant: str, purpose: str, max_age_hours: int | None) -> ApiCall[ThreadOut]:
    body = CreateThreadRequest.model_construct(
        assistant=assistant, purpose=purpose, max_age_hours=max_age_hours
    )
    return ApiCall("POST", "/v1/threads", ThreadOut, body=body)


def get_thread(thread_id: str) -> ApiCall[ThreadOut]:
    return ApiCall("GET", f"/v1/threads/{thread_id}", ThreadOut)


def create_run(
    thread_id: str, message: str, file_ids: Sequence[str], if_busy: str, idempotency_key: str | None
) -> ApiCall[RunOut]:
    body = CreateRunRequest.model_construct(message=message, file_ids=list(file_ids), if_busy=if_busy)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return ApiCall("POST", f"/v1/threads/{thread_id}/runs", RunOut, body=body, headers=headers)


def get_run(run_id: str) -> ApiCall[RunOut]:
    return ApiCall("GET", f"/v1/runs/{run_id}", RunOut)


def list_runs(thread_id: str, limit: int | None, after: str | None) -> ApiCall[RunPage]:
    return ApiCall("GET", f"/v1/threads/{thread_id}/runs", RunPage, query=_query(limit=limit, after=after))


def cancel_run(run_id: str) -> ApiCall[RunOut]:
    return ApiCall("POST", f"/v1/runs/{run_id}/cancel", RunOut)


def run_events(run_id: str, after: int, wait: float) -> ApiCall[RunEventPage]:
    wait = max(0.0, min(MAX_EVENT_WAIT_SECONDS, round(wait, 1)))
    return ApiCall(
        "GET",
        f"/v1/runs/{run_id}/events",
        RunEventPage,
        query=_query(after=after, wait=wait),
        holds_seconds=wait,
    )


def run_trace(run_id: str) -> ApiCall[RunTraceOut]:
    return ApiCall("GET", f"/v1/runs/{run_id}/trace", RunTraceOut)


def submit_tool_outputs(run_id: str, outputs: Sequence[ToolOutputIn]) -> ApiCall[RunOut]:
    body = SubmitToolOutputsRequest.model_construct(tool_outputs=list(outputs))
    return ApiCall("POST", f"/v1/runs/{run_id}/tool_outputs", RunOut, body=body)


def approve(run_id: str, decisions: Sequence[ApprovalIn]) -> ApiCall[RunOut]:
    return ApiCall(
        "POST",
        f"/v1/runs/{run_id}/approvals",
        RunOut,
        body=ApprovalsRequest.model_construct(decisions=list(decisions)),
    )


def create_file(
    thread_id: str, filename: str, content_type: str, size_bytes: int, purpose: FilePurpose
) -> ApiCall[CreatedFileOut]:
    body = CreateFileRequest.model_construct(
        thread_id=thread_id,
        filename=filename,
        content_type=content_type,
        size_bytes=size_bytes,
        purpose=purpose,
    )
    return ApiCall("POST", "/v1/files", CreatedFileOut, body=body)


def get_file(file_id: str) -> ApiCall[FileOut]:
    return ApiCall("GET", f"/v1/files/{file_id}", FileOut)


def get_usage(from_: date | None, to: date | None) -> ApiCall[UsageOut]:
    return ApiCall("GET", "/v1/usage", UsageOut, query=_query(from_=from_, to=to))
