"""Runs: stored, then handed to the workflow as an execution named after the run."""

from __future__ import annotations

from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError

from threadrunner import clock
from threadrunner.assistants import load_assistant
from threadrunner.errors import ServiceUnavailableError
from threadrunner.models.api import CreateRunRequest, RunOut
from threadrunner.models.records import RunError, RunRecord, RunStatus
from threadrunner.models.workflow import ExecutionInput, PollSettings, RunProgress
from threadrunner.services.context import ApiContext


def create_run(ctx: ApiContext, user_id: str, thread_id: str, request: CreateRunRequest) -> RunOut:
    thread = ctx.threads.get(user_id, thread_id)
    assistant = load_assistant(ctx.tool_settings.assistants_dir, thread.assistant)
    settings = ctx.run_settings
    now = clock.now()
    run = RunRecord(
        id=clock.new_id("run"),
        thread_id=thread.id,
        user_id=user_id,
        assistant=thread.assistant,
        engine=thread.engine,
        model=assistant.model or settings.model,
        message=request.message,
        created_at=now,
        deadline_at=now + timedelta(seconds=settings.run_deadline_seconds),
    )
    ctx.threads.acquire(thread, run.id)  # 409 while another run is active
    ctx.runs.create(run)
    ctx.threads.touch(user_id, thread.id, settings.thread_ttl_days)
    execution = ExecutionInput(
        run_id=run.id,
        settings=PollSettings(
            first_wait_seconds=settings.poll_first_seconds,
            max_wait_seconds=settings.poll_max_seconds,
            max_polls=settings.max_polls,
        ),
        run=RunProgress(status=RunStatus.queued),
    )
    try:
        started = ctx.stepfunctions.start_execution(
            stateMachineArn=ctx.workflow_settings.state_machine_arn,
            name=run.id,
            input=execution.model_dump_json(),
        )
    except (ClientError, BotoCoreError) as error:
        # Nothing half-done: the run is recorded as failed and the thread is free again.
        ctx.runs.update(
            run.id,
            status=RunStatus.failed,
            completed_at=clock.now(),
            error=RunError(code="workflow_unavailable", message="the run could not be started"),
        )
        ctx.threads.release(user_id, thread.id, run.id, settings.thread_ttl_days)
        raise ServiceUnavailableError("the run could not be started; try again") from error
    ctx.runs.update(run.id, execution_arn=started["executionArn"])
    return RunOut.of(run.model_copy(update={"execution_arn": started["executionArn"]}), _region(ctx))


def get_run(ctx: ApiContext, user_id: str, run_id: str) -> RunOut:
    return RunOut.of(ctx.runs.get_for_user(run_id, user_id), _region(ctx))


def _region(ctx: ApiContext) -> str:
    return ctx.workflow_settings.region
