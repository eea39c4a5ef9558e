"""``/compat/v1/threads/{thread_id}/runs`` (and ``/threads/runs``): a facade run is a threadrunner run of a
user's own assistant, with its Step Functions execution, metrics, usage, budgets and cleanup, seen in the
Assistants shape. Its function tools are client tools: the run goes ``requires_action`` with
``required_action.submit_tool_outputs.tool_calls`` and goes on when the outputs are submitted."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from threadrunner import clock, history
from threadrunner.compat import ids
from threadrunner.compat.assistant_store import CompatAssistant, check_tools
from threadrunner.compat.errors import CompatError, invalid, not_found
from threadrunner.compat.pages import page
from threadrunner.compat.streams import EventStream, run_stream
from threadrunner.compat.threads_api import create as create_thread
from threadrunner.compat.threads_api import get_thread
from threadrunner.compat.wire import CreateMessage, CreateRun, CreateThreadAndRun, SubmitToolOutputs, parse
from threadrunner.errors import NotFoundError
from threadrunner.models.api_runs import SubmitToolOutputsRequest, ToolOutputIn
from threadrunner.models.records import ActionType, FileStatus, RunRecord, RunStatus, ToolCallRecord
from threadrunner.services import actions, runs
from threadrunner.services.context import ApiContext
from threadrunner.services.files import files_for_run

STAGING_WAIT_SECONDS = 15
# threadrunner's statuses in the Assistants API's words (a cancel under way is "cancelling", below).
_STATUS = {
    RunStatus.queued: "queued",
    RunStatus.in_progress: "in_progress",
    RunStatus.requires_action: "requires_action",
    RunStatus.completed: "completed",
    RunStatus.failed: "failed",
    RunStatus.cancelled: "cancelled",
    RunStatus.timed_out: "expired",
}


def create(ctx: ApiContext, user_id: str, facade_thread_id: str, data: Any) -> dict[str, Any] | EventStream:
    body = parse(CreateRun, data)
    thread = get_thread(ctx, user_id, facade_thread_id)
    return _start(ctx, user_id, thread.id, body, body.additional_messages or [])


def create_thread_and_run(ctx: ApiContext, user_id: str, data: Any) -> dict[str, Any] | EventStream:
    body = parse(CreateThreadAndRun, data)
    if body.tools is not None:
        check_tools(body.tools, ctx.run_settings.engine)
    ctx.compat_assistants.get(user_id, body.assistant_id, param="assistant_id")  # before the thread is made
    thread = create_thread(ctx, user_id, body.thread.model_dump(exclude_unset=True) if body.thread else {})
    options = CreateRun.model_validate(
        body.model_dump(exclude={"thread", "tool_resources"}, exclude_unset=True)
    )
    return _start(ctx, user_id, ids.thread_in(thread["id"]), options, [])


def retrieve(ctx: ApiContext, user_id: str, facade_thread_id: str, run_id: str) -> dict[str, Any]:
    return run_resource(ctx, _run(ctx, user_id, facade_thread_id, run_id))


def list_page(
    ctx: ApiContext, user_id: str, facade_thread_id: str, query: Mapping[str, str]
) -> dict[str, Any]:
    thread = get_thread(ctx, user_id, facade_thread_id)
    found = ctx.runs.list_for_thread(thread.id)
    return page(found, query, id_of=lambda run: run.id, resource=lambda run: run_resource(ctx, run))


def cancel(ctx: ApiContext, user_id: str, facade_thread_id: str, run_id: str) -> dict[str, Any]:
    run = _run(ctx, user_id, facade_thread_id, run_id)
    if run.status.is_terminal:
        raise invalid(f"Cannot cancel run with status '{_STATUS[run.status]}'.")
    runs.cancel(ctx, run)
    return run_resource(ctx, ctx.runs.get(run.id))


def submit_tool_outputs(
    ctx: ApiContext, user_id: str, facade_thread_id: str, run_id: str, data: Any
) -> dict[str, Any] | EventStream:
    run = _run(ctx, user_id, facade_thread_id, run_id)
    body = parse(SubmitToolOutputs, data)
    action = run.required_action
    if run.status is not RunStatus.requires_action or action is None or action.answered_at is not None:
        raise invalid(f"Runs in status '{run_resource(ctx, run)['status']}' do not accept tool outputs.")
    request = SubmitToolOutputsRequest(
        tool_outputs=[ToolOutputIn(tool_call_id=o.tool_call_id, output=o.output) for o in body.tool_outputs]
    )
    actions.submit_tool_outputs(ctx, user_id, run.id, request)
    if body.stream:
        return run_stream(ctx, run.id, created=False)
    return run_resource(ctx, ctx.runs.get(run.id))


def list_steps(
    ctx: ApiContext, user_id: str, facade_thread_id: str, run_id: str, query: Mapping[str, str]
) -> dict[str, Any]:
    run = _run(ctx, user_id, facade_thread_id, run_id)
    return page(steps_of(ctx, run), query, id_of=lambda step: str(step["id"]), resource=dict)


def retrieve_step(
    ctx: ApiContext, user_id: str, facade_thread_id: str, run_id: str, step_id: str
) -> dict[str, Any]:
    run = _run(ctx, user_id, facade_thread_id, run_id)
    for step in steps_of(ctx, run):
        if step["id"] == step_id:
            return step
    raise not_found("run step", step_id)


def run_resource(ctx: ApiContext, run: RunRecord) -> dict[str, Any]:
    status = _STATUS[run.status]
    if run.cancel_requested and not run.status.is_terminal:
        status = "cancelling"
    action = run.required_action
    required = None
    if status == "requires_action" and action is not None and action.type is ActionType.submit_tool_outputs:
        calls = {summary.call_id: summary for summary in run.tool_calls}
        required = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": calls[call_id].name, "arguments": calls[call_id].arguments},
                    }
                    for call_id in action.call_ids
                    if call_id in calls
                ]
            },
        }
    usage = run.usage
    ended = clock.epoch(run.completed_at) if run.completed_at else None
    assistant = _assistant(ctx, run)
    return {
        "id": run.id,
        "object": "thread.run",
        "created_at": clock.epoch(run.created_at),
        "thread_id": ids.thread_out(run.thread_id),
        "assistant_id": run.assistant,
        "status": status,
        "required_action": required,
        "last_error": _last_error(run),
        "expires_at": clock.epoch(action.expires_at) if required and action else clock.epoch(run.deadline_at),
        "started_at": clock.epoch(run.started_at) if run.started_at else None,
        "cancelled_at": ended if run.status is RunStatus.cancelled else None,
        "failed_at": ended if run.status is RunStatus.failed else None,
        "completed_at": ended if run.status is RunStatus.completed else None,
        "incomplete_details": None,
        "model": run.model,
        "instructions": run.instructions or (assistant.instructions if assistant else None) or "",
        "tools": run.tools
        if run.tools is not None
        else [tool.resource() for tool in assistant.tools]
        if assistant
        else [],
        "metadata": run.metadata,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
        if run.status.is_terminal
        else None,
        "temperature": assistant.temperature if assistant and assistant.temperature is not None else 1.0,
        "top_p": assistant.top_p if assistant and assistant.top_p is not None else 1.0,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "response_format": "auto",
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }


def steps_of(ctx: ApiContext, run: RunRecord) -> list[dict[str, Any]]:
    """The run's steps, oldest first: one ``tool_calls`` step per round of function calls, then the answer's
    ``message_creation``."""
    ledger: list[ToolCallRecord] = ctx.ledger.list(run.id)
    rounds = sorted({call.round for call in ledger})
    steps = []
    for number in rounds:
        calls = [call for call in ledger if call.round == number]
        done = all(call.output is not None for call in calls)
        steps.append(
            _step(
                run,
                f"step_{run.id.removeprefix('run_')}_{number:04d}",
                "tool_calls",
                {
                    "type": "tool_calls",
                    "tool_calls": [
                        {
                            "id": call.call_id,
                            "type": "function",
                            "function": {
                                "name": call.name,
                                "arguments": call.arguments,
                                "output": call.output,
                            },
                        }
                        for call in calls
                    ],
                },
                status="completed"
                if done
                else ("in_progress" if not run.status.is_terminal else _STATUS[run.status]),
                created_at=min(clock.epoch(call.started_at or run.created_at) for call in calls),
            )
        )
    if run.status is RunStatus.completed:
        steps.append(
            _step(
                run,
                f"step_{run.id.removeprefix('run_')}_answer",
                "message_creation",
                {
                    "type": "message_creation",
                    "message_creation": {"message_id": ids.message_out(history.answer_id(run))},
                },
                status="completed",
                created_at=clock.epoch(run.completed_at or run.created_at),
            )
        )
    return steps


def _step(
    run: RunRecord, step_id: str, kind: str, details: dict[str, Any], *, status: str, created_at: int
) -> dict[str, Any]:
    finished = clock.epoch(run.completed_at) if run.completed_at else None
    return {
        "id": step_id,
        "object": "thread.run.step",
        "created_at": created_at,
        "assistant_id": run.assistant,
        "thread_id": ids.thread_out(run.thread_id),
        "run_id": run.id,
        "type": kind,
        "status": status,
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": finished if status == "cancelled" else None,
        "failed_at": finished if status == "failed" else None,
        "completed_at": created_at if status == "completed" else None,
        "metadata": {},
        "usage": None,
    }


def _start(
    ctx: ApiContext, user_id: str, thread_id: str, body: CreateRun, additional: list[CreateMessage]
) -> dict[str, Any] | EventStream:
    if body.tools is not None:
        check_tools(body.tools, ctx.run_settings.engine)
    assistant = ctx.compat_assistants.get(user_id, body.assistant_id, param="assistant_id")
    thread = ctx.threads.get(user_id, thread_id)
    extras = ctx.compat_threads.get(user_id, thread_id)
    texts = [waiting.text for waiting in extras.waiting]
    for index, added in enumerate(additional):
        if added.role != "user" or added.attachments:
            raise invalid("Only user text messages are supported here.", f"additional_messages[{index}]")
        texts.append(added.text())
    if not any(text.strip() for text in texts):
        raise invalid("The thread has no new user message for the run to answer.", "additional_messages")
    joined = "\n\n".join(texts)
    runs.check_message_length(ctx, joined, "additional_messages")
    run = runs.new_run(
        ctx, thread, assistant=assistant.id, model=body.model or assistant.model, message=joined
    )
    file_ids = [file_id for waiting in extras.waiting for file_id in waiting.file_ids]
    documents = [file_id for waiting in extras.waiting for file_id in waiting.document_ids]
    if file_ids or documents:  # a document is searched once it is in the thread's store: staged
        _wait_until_staged(ctx, user_id, file_ids + documents)
    run = run.model_copy(
        update={
            "file_ids": files_for_run(ctx, user_id, thread, file_ids),
            "instructions": body.instructions,
            "additional_instructions": body.additional_instructions,
            "metadata": body.metadata or {},
            "tools": None if body.tools is None else [tool.resource() for tool in body.tools],
        }
    )
    also = [ctx.compat_threads.take_waiting(extras)] if extras.waiting else []
    started, _ = runs.start_run(ctx, thread, run, enqueue=False, also=also)
    if body.stream:
        return run_stream(ctx, started.id, created=True)
    return run_resource(ctx, started)


def _wait_until_staged(ctx: ApiContext, user_id: str, file_ids: list[str]) -> None:
    """The attachments' staging (S3 -> stage_file -> the engine's Files API) takes seconds: the run waits for
    it, up to STAGING_WAIT_SECONDS (the Lambda's own timeout is 25 s)."""
    deadline = time.monotonic() + STAGING_WAIT_SECONDS
    while True:
        records = [ctx.files.get(user_id, file_id) for file_id in file_ids]
        if failed := [record for record in records if record.status is FileStatus.failed]:
            raise invalid(
                f"The file {failed[0].filename} could not be read: {failed[0].reason}", "attachments"
            )
        if all(record.status is FileStatus.ready for record in records) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    if not all(record.status is FileStatus.ready for record in records):
        raise CompatError(409, "The attached files are still being processed; try again in a moment.")


def _check_run_options(stream: bool | None) -> None:
    if stream:
        raise invalid(
            "This deployment does not stream (API Gateway HTTP APIs cannot): poll the run.", "stream"
        )


def _run(ctx: ApiContext, user_id: str, facade_thread_id: str, run_id: str) -> RunRecord:
    thread = get_thread(ctx, user_id, facade_thread_id)
    try:
        run = ctx.runs.get_for_user(ids.run_in(run_id), user_id)
    except NotFoundError:
        raise not_found("run", run_id) from None
    if run.thread_id != thread.id:
        raise not_found("run", run_id)
    return run


def _assistant(ctx: ApiContext, run: RunRecord) -> CompatAssistant | None:
    try:
        return ctx.compat_assistants.get(run.user_id, run.assistant)
    except Exception:  # deleted since: the run still shows
        return None


def _last_error(run: RunRecord) -> dict[str, str] | None:
    if run.status not in (RunStatus.failed, RunStatus.timed_out) or run.error is None:
        return None
    code = "rate_limit_exceeded" if "rate" in run.error.code else "server_error"
    return {"code": code, "message": f"{run.error.code}: {run.error.message}"}
