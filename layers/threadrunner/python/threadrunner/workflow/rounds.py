"""Round bookkeeping the steps share. A round is one upstream response: Start run creates round 0 and each
Submit tool outputs the next. Here: what a run asks its engine for (its whole message, its model, its
request), the exactly-once create of a round, and the short form of its tool outputs kept on the run."""

from __future__ import annotations

import logging
from collections.abc import Callable

from threadrunner import clock
from threadrunner.assistant_catalog import assistant_for_run
from threadrunner.assistant_definitions import AssistantConfig
from threadrunner.engines.base import AssistantDefinition, HostedTools, RunFile, RunRequest
from threadrunner.errors import UpstreamOutcomeUnknown
from threadrunner.models.records import RunRecord, ToolCallRecord
from threadrunner.models.run_events import RunEventType
from threadrunner.tool_summaries import summarize_tool_calls
from threadrunner.tools.registry import tool_specs
from threadrunner.workflow import lost_creates
from threadrunner.workflow.context import StepContext

logger = logging.getLogger(__name__)


def with_message(run: RunRecord, ctx: StepContext) -> RunRecord:
    """The run with its whole message: a long one is kept in S3, not in the run item."""
    if run.message_key is None:
        return run
    return run.model_copy(update={"message": ctx.messages.run_message(run.message_key)})


def run_model(run: RunRecord, ctx: StepContext) -> str:
    """An engine with its own upstream may name the model that server runs; else the run's."""
    return ctx.upstream_settings.model_for(run.engine) or run.model


def run_request(run: RunRecord, upstream_thread_id: str, ctx: StepContext) -> RunRequest:
    assistant = assistant_for_run(run, ctx.tool_settings.assistants_dir)
    # A run's own instructions (the Assistants-compatible API) replace the assistant's, or add to them.
    instructions = (run.instructions or assistant.instructions).rstrip()
    if run.additional_instructions:
        instructions = f"{instructions}\n\n{run.additional_instructions.rstrip()}"
    # Models do not know today's date, and "last quarter" depends on it.
    instructions = f"{instructions}\n\nCurrent date: {clock.now().date().isoformat()}"
    tools = tool_specs(assistant)
    return RunRequest(
        upstream_thread_id=upstream_thread_id,
        model=run_model(run, ctx),
        instructions=instructions,
        tools=tools,
        metadata={"threadrunner_run_id": run.id, "threadrunner_thread_id": run.thread_id},
        run_id=run.id,
        thread_id=run.thread_id,
        deadline_at=run.deadline_at,
        assistant=AssistantDefinition(
            name=assistant.name,
            description=assistant.description,
            instructions=assistant.instructions,
            model=run_model(run, ctx),
            tools=tools,
        ),
        files=_run_files(run, ctx),
        hosted=_hosted_tools(assistant, ctx),
    )


def _hosted_tools(assistant: AssistantConfig, ctx: StepContext) -> HostedTools:
    """The assistant's web search and MCP servers, with the secret names of the servers' headers from the
    environment's allow-list (the engine reads them; the API and synth refused servers not on it)."""
    named = {server.server_label for server in assistant.mcp}
    return HostedTools(
        web_search=assistant.web_search,
        mcp=assistant.mcp,
        mcp_secrets={
            allowed.server_label: allowed.secret_name
            for allowed in ctx.tool_settings.mcp_servers
            if allowed.secret_name and allowed.server_label in named
        },
    )


def _run_files(run: RunRecord, ctx: StepContext) -> list[RunFile]:
    """The run's uploads as the engine attaches them (the API let only ready files of the thread in)."""
    if not run.file_ids:
        return []
    if ctx.files is None:
        raise RuntimeError("this step has no file store, and the run has files")
    files = []
    for file_id in run.file_ids:
        record = ctx.files.get(run.user_id, file_id)  # deleted since: the run fails, it cannot use it
        files.append(
            RunFile(
                file_id=record.id,
                upstream_file_id=record.upstream_file_id,
                filename=record.filename,
                content_type=record.content_type,
                purpose=record.purpose.value,
                key=record.key,
            )
        )
    return files


def create_round(
    run: RunRecord,
    round_number: int,
    *,
    create: Callable[[], str],
    find: Callable[[], str | None],
    ctx: StepContext,
) -> None:
    """Exactly once: claim, create, record. A re-executed step whose earlier attempt died after its create
    call returned looks upstream first (``find``) and records what it finds instead of creating again; a
    create whose call got no answer may still land upstream and is never reissued."""
    if not ctx.runs.claim_round(run.id, round_number):
        found = find()
        if found is not None:
            logger.info("run %s: round %s was created by an interrupted attempt", run.id, round_number)
            ctx.runs.record_round(run.id, round_number, found, clock.now())
            _log_model_started(run, round_number, found, ctx)
            return
        # The earlier attempt created nothing: its claim is ours now.
    try:
        response_id = create()
    except UpstreamOutcomeUnknown:
        ctx.runs.mark_round_unknown(run.id, round_number)
        lost_creates.cancel_lost_create(run, round_number, find, ctx)
        raise
    except Exception:
        # the upstream answered with an error: nothing was created
        ctx.runs.release_round(run.id, round_number)
        raise
    ctx.runs.record_round(run.id, round_number, response_id, clock.now())
    _log_model_started(run, round_number, response_id, ctx)


def _log_model_started(run: RunRecord, round_number: int, response_id: str, ctx: StepContext) -> None:
    # Keyed by the upstream response: a round started again (stuck in the queue) logs its new start.
    ctx.runs.events.log(
        run, RunEventType.model_started, {"round": round_number}, key=f"model.started#{response_id}"
    )


def summarize_tool_outputs(run: RunRecord, calls: list[ToolCallRecord], ctx: StepContext) -> RunRecord:
    """Copy a short form of each output (``calls``: the run's ledger) onto the run, for GET /v1/runs/{id};
    returns the run with them. The step's own reads suffice: nothing else writes the run's tool calls
    while Submit tool outputs or Finish run holds it."""
    summaries = summarize_tool_calls(run.tool_calls, calls)  # still valid JSON, and says when it was cut
    ctx.runs.update(run.id, tool_calls=summaries)
    return run.model_copy(update={"tool_calls": summaries})
