"""Tool calls: routing what the model asked for (Check run records each call and sends it to its tool's
Lambda, or straight to an error output), Run tool (one tool's own Lambda) and Submit tool outputs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from threadrunner import clock
from threadrunner.assistant_catalog import assistant_for, assistant_for_run
from threadrunner.assistant_definitions import AssistantConfig
from threadrunner.engines.base import ToolOutput, UpstreamRun, UpstreamToolCall
from threadrunner.hosted_tools import RUNS_ON_MCP
from threadrunner.models.records import RunRecord, RunStatus, ToolCallRecord, ToolCallSummary
from threadrunner.models.run_events import RunEventType
from threadrunner.models.workflow import PendingToolCall, RunProgress, RunToolInput, RunToolOutput, StepInput
from threadrunner.tool_summaries import summarize_tool_calls
from threadrunner.tools.registry import ToolContext, ToolResult, call_tool, error_result, refusal
from threadrunner.workflow import stream_relay, tool_crashes
from threadrunner.workflow.context import StepContext
from threadrunner.workflow.deleted_runs import progress_of_deleted, tool_output_of_deleted, unless_run_deleted
from threadrunner.workflow.rounds import create_round, run_request, summarize_tool_outputs, with_message

# A tool Lambda that died (timeout, crash) is tried again once; then the model gets an error output.
MAX_TOOL_ATTEMPTS = 2


class ToolOutputsMissing(Exception):
    """Submit tool outputs found no tool call in the run's current round: there is nothing to hand back."""


def record_tool_calls(run: RunRecord, upstream: UpstreamRun, ctx: StepContext) -> list[PendingToolCall]:
    """Put every requested call in the ledger and route it: to its tool's Lambda, or, when it must not run
    (unknown tool, not this assistant's, no Lambda deployed), straight to an error output for the model.
    A client tool's call goes to neither: the application answers it (Wait for the application). A call
    that needs approval goes to its Lambda too, and runs there once approved (denied: it has its output)."""
    assistant = assistant_for_run(run, ctx.tool_settings.assistants_dir)
    known = {summary.call_id for summary in run.tool_calls}
    pending = []
    created: list[tuple[RunEventType, dict[str, Any], str]] = []
    refused_calls: list[tuple[ToolCallRecord, ToolResult]] = []
    for call in upstream.tool_calls:
        waits_for = None
        if call.kind == "mcp_approval" or call.name in assistant.approval_required:
            waits_for = "approval"  # an MCP server's call (hosted_tools) or a server tool's
        elif call.name in assistant.client_tools:
            waits_for = "client"
        runs_on = _runs_on(call, assistant)
        record = ToolCallRecord(
            run_id=run.id,
            call_id=call.call_id,
            round=run.round,
            name=call.name,
            arguments=call.arguments,
            waits_for=waits_for,
            runs_on=runs_on,
            server_label=call.server_label,
        )
        ctx.ledger.add(record)
        created.append(_created_event(record))
        if runs_on in ("client", RUNS_ON_MCP):
            continue  # the application answers it, or the MCP server runs it once approved: no Lambda
        function = ctx.tool_functions.get(call.name)
        refused = refusal(call.name, assistant)
        if refused is None and function is None:
            refused = error_result(f"the tool {call.name} is not deployed")
        if refused is not None:
            refused_calls.append((record, refused))
        else:
            pending.append(PendingToolCall(call_id=call.call_id, name=call.name, function=function or ""))
    # Every call's creation first (in a few writes: a round may ask for hundreds), then the refusals' outputs.
    ctx.runs.events.log_many(run, created)
    for record, refused in refused_calls:
        _store_output(record, refused, clock.now(), ctx)
    new = [
        ToolCallSummary(
            call_id=c.call_id,
            name=c.name,
            arguments=c.arguments,
            runs_on=_runs_on(c, assistant),
            server_label=c.server_label,
        )
        for c in upstream.tool_calls
        if c.call_id not in known
    ]
    if new:
        ctx.runs.update(run.id, tool_calls=[*run.tool_calls, *new])
    return pending


def _runs_on(call: UpstreamToolCall, assistant: AssistantConfig) -> str:
    if call.kind == "mcp_approval":
        return RUNS_ON_MCP
    return "client" if call.name in assistant.client_tools else "server"


def _created_event(call: ToolCallRecord) -> tuple[RunEventType, dict[str, Any], str]:
    """The call's tool_call.created event (type, data, its once-only key)."""
    data: dict[str, Any] = {
        "id": call.call_id,
        "name": call.name,
        "round": call.round,
        "runs_on": call.runs_on,
        "approval": call.waits_for == "approval",
    }
    if call.server_label is not None:
        data["server_label"] = call.server_label
    return RunEventType.tool_call_created, data, f"tool_call.created#{call.call_id}"


def record_hosted_calls(run: RunRecord, upstream: UpstreamRun, ctx: StepContext) -> RunRecord:
    """The MCP calls the upstream made within the response (threadrunner.hosted_tools) join the run's tool
    calls like function calls, outputs included, with tool_call.created / tool_call.completed events. A
    call made once approved completes the run's call of its approval request (the id the application
    approved). Once per call: a re-polled response finds them recorded. Returns the run as updated."""
    if not upstream.hosted_calls:
        return run
    ledger = {call.call_id: call for call in ctx.ledger.list(run.id)}
    known = {summary.call_id for summary in run.tool_calls}
    new = []
    now = clock.now()
    for hosted in upstream.hosted_calls:
        approved = ledger.get(hosted.approval_request_id or "")
        call = approved or ledger.get(hosted.call_id)
        if call is None:
            call = ToolCallRecord(
                run_id=run.id,
                call_id=hosted.call_id,
                round=run.round,
                name=hosted.name,
                arguments=hosted.arguments,
                runs_on=RUNS_ON_MCP,
                server_label=hosted.server_label,
            )
            ctx.ledger.add(call)
            event_type, data, key = _created_event(call)
            ctx.runs.events.log(run, event_type, data, key=key)
        if call.call_id not in known:
            new.append(
                ToolCallSummary(
                    call_id=call.call_id,
                    name=call.name,
                    arguments=call.arguments,
                    runs_on=RUNS_ON_MCP,
                    server_label=call.server_label,
                )
            )
            known.add(call.call_id)
        if call.output is None:
            failed = hosted.error is not None
            output = hosted.error if failed else hosted.output
            ledger[call.call_id] = ctx.ledger.save_output(  # first write wins: once per call
                call.model_copy(
                    update={
                        "output": output or "",
                        "is_error": failed,
                        "finished_at": now,
                        # an approved call ran after its approval; others within the response
                        "duration_ms": _ms_since(call.approval.decided_at, now) if call.approval else None,
                    }
                )
            )
            ctx.runs.events.tool_call_completed(ledger[call.call_id])
    summaries = summarize_tool_calls([*run.tool_calls, *new], list(ledger.values()))
    ctx.runs.update(run.id, tool_calls=summaries)
    return run.model_copy(update={"tool_calls": summaries})


def tool_runner(tool_name: str) -> Callable[[RunToolInput, StepContext], RunToolOutput]:
    """The step behind one tool's own Lambda (functions/run_tool, one per tool): it runs that tool and no other."""

    @unless_run_deleted(tool_output_of_deleted)
    def run_tool(call_input: RunToolInput, ctx: StepContext) -> RunToolOutput:
        call = ctx.ledger.get(call_input.run_id, call_input.call_id)
        if call.output is not None:  # a retried step: the tool already ran, reuse its output
            return RunToolOutput(call_id=call.call_id, is_error=call.is_error)
        started = clock.now()
        attempt = ctx.ledger.start_attempt(call.run_id, call.call_id, started.isoformat())
        if call.name != tool_name:
            result = error_result(f"the call for {call.name} reached the {tool_name} tool")
        elif call.waits_for == "approval" and (call.approval is None or not call.approval.approved):
            result = error_result(f"the call of {tool_name} was not approved")
        elif attempt > MAX_TOOL_ATTEMPTS:  # earlier attempts died (Lambda timeout, crash): stop trying
            result = error_result(f"the tool {tool_name} did not finish after {MAX_TOOL_ATTEMPTS} attempts")
        else:
            run = ctx.runs.place(call_input.run_id)
            assistant = assistant_for(run.assistant, run.user_id, ctx.tool_settings.assistants_dir)
            result = call_tool(
                call.name, call.arguments, ToolContext(assistant=assistant, settings=ctx.tool_settings)
            )
            if result.full_output is not None:
                key = ctx.messages.keep_tool_output(
                    run.thread_id, call.run_id, call.call_id, result.full_output
                )
                call = call.model_copy(update={"full_output_key": key})
        stored = _store_output(call, result, started, ctx)
        return RunToolOutput(call_id=stored.call_id, is_error=stored.is_error)

    run_tool.__name__ = f"run_{tool_name}"
    return run_tool


@unless_run_deleted(progress_of_deleted)
def submit_tool_outputs(step: StepInput, ctx: StepContext) -> RunProgress:
    run = with_message(ctx.runs.get(step.run_id), ctx)
    calls = ctx.ledger.list(run.id)
    # Every call the current response asked for (the ledger has them all, including refused ones).
    requested = [call for call in calls if call.round == run.round]
    if not requested and any(call.round == run.round - 1 for call in calls):
        # A re-executed step: the outputs went out and their round is recorded; nothing to submit again.
        ctx.runs.update(run.id, status=RunStatus.in_progress)
        return RunProgress(
            status=RunStatus.in_progress,
            wait_seconds=step.settings.first_wait_seconds,
            poll_count=step.run.poll_count,
        )
    if not requested:
        raise ToolOutputsMissing(f"run {run.id} asked for no tool calls in round {run.round}")
    # A call still without output here had its tool's Lambda die: the model gets an error output for it.
    # (Not an MCP call: its server runs it upstream, once approved.)
    mcp = [call for call in calls if call.runs_on == RUNS_ON_MCP]
    calls = [
        *tool_crashes.answer_dead_calls([c for c in calls if c.runs_on != RUNS_ON_MCP], run.round, ctx),
        *mcp,
    ]
    requested = [call for call in calls if call.round == run.round]
    outputs = [_output(call) for call in requested if call.runs_on != RUNS_ON_MCP]
    # MCP calls that waited for approval: the decision goes back as an mcp_approval_response.
    outputs += [
        ToolOutput(
            call_id=call.call_id,
            output="",
            approve=call.approval is not None and call.approval.approved,
            reason=call.approval.reason if call.approval is not None else "not approved",
        )
        for call in requested
        if call.runs_on == RUNS_ON_MCP and call.waits_for == "approval"
    ]
    summarize_tool_outputs(run, calls, ctx)
    engine = ctx.engine(run.engine)
    request = run_request(run, run.upstream_thread_id or "", ctx)
    call_ids = [output.call_id for output in outputs]
    with stream_relay.streaming(engine, run, ctx) as streamed:  # "stream": true (chat logs here)
        create_round(
            run,
            run.round + 1,
            create=lambda: streamed.submit_tool_outputs(request, run, outputs),
            find=lambda: engine.find_created(request, run, run.round + 1, call_ids),
            ctx=ctx,
        )
    ctx.runs.update(run.id, status=RunStatus.in_progress)
    return RunProgress(
        status=RunStatus.in_progress,
        wait_seconds=step.settings.first_wait_seconds,
        poll_count=step.run.poll_count,
    )


def _ms_since(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds() * 1000))


def _output(call: ToolCallRecord) -> ToolOutput:
    return ToolOutput(call_id=call.call_id, output=call.output or "")


def _store_output(
    call: ToolCallRecord, result: ToolResult, started: datetime, ctx: StepContext
) -> ToolCallRecord:
    finished = clock.now()
    stored = ctx.ledger.save_output(
        call.model_copy(
            update={
                "output": result.output,
                "is_error": result.is_error,
                "truncated": result.truncated,
                "finished_at": finished,
                "duration_ms": int((finished - started).total_seconds() * 1000),
            }
        )
    )
    ctx.runs.events.tool_call_completed(stored)
    return stored
