"""Repairing runs (threadrunner.run_repair) on moto: the steps' context with a fake engine, moto's Step
Functions for StartExecution and DescribeExecution (its executions stay RUNNING until stopped), and the
status-change event EventBridge delivers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError
from threadrunner import clock
from threadrunner.engines.base import UpstreamRun, UpstreamToolCall
from threadrunner.executions import ExecutionStarter
from threadrunner.models.records import RunRecord, Usage
from threadrunner.models.repairs import ExecutionStatusChange, ExecutionStatusChangeEvent
from threadrunner.models.workflow import PollSettings, RunProgress, StepInput
from threadrunner.run_repair import RepairContext
from threadrunner.settings import CostSettings, RunSettings, ToolSettings
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore
from threadrunner.stores.tool_call_ledger import ToolCallLedger
from threadrunner.stores.usage import UsageStore
from threadrunner.workflow import check_steps, start_steps
from threadrunner.workflow.context import StepContext

from tests.support.aws import moto_tables
from tests.support.fakes import FakeEngine
from tests.support.runs import alices_thread, run_record

REGION, ACCOUNT = "us-east-1", "123456789012"
BUCKET = "repair-test"
POLL = PollSettings(first_wait_seconds=0, max_wait_seconds=0, max_polls=50)
USAGE = Usage(prompt_tokens=1000, completion_tokens=200, total_tokens=1200)
DEFINITION = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}


class FlakyStarter:
    """StartExecution on moto, refused (a throttled or failing Step Functions) while ``failing``."""

    def __init__(self, start: ExecutionStarter) -> None:
        self._start = start
        self.failing = False

    def __call__(self, run_id: str) -> str:
        if self.failing:
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "StartExecution"
            )
        return self._start(run_id)


@dataclass
class RepairWorld:
    repairs: RepairContext
    engine: FakeEngine
    starter: FlakyStarter
    stepfunctions: Any
    tables: dict[str, Any]

    @property
    def steps(self) -> StepContext:
        return self.repairs.steps

    def execution_status(self, run_id: str) -> str | None:
        try:
            described = self.stepfunctions.describe_execution(executionArn=self.execution_arn(run_id))
        except ClientError:
            return None
        return str(described["status"])

    def execution_arn(self, run_id: str) -> str:
        machine = self.repairs.state_machine_arn
        return f"{machine.replace(':stateMachine:', ':execution:')}:{run_id}"

    def stop(self, run_id: str) -> None:
        """An operator's StopExecution, with no event delivered."""
        self.stepfunctions.stop_execution(executionArn=self.execution_arn(run_id))


def repair_world() -> Iterator[RepairWorld]:
    """A generator for a fixture: the world, inside moto."""
    with moto_tables() as tables:
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        stepfunctions = boto3.client("stepfunctions", region_name=REGION)
        machine = stepfunctions.create_state_machine(
            name="test-run",
            definition=json.dumps(DEFINITION),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/test-run",
        )["stateMachineArn"]
        settings = RunSettings(environment="test")
        starter = FlakyStarter(ExecutionStarter(stepfunctions, machine, settings))
        engine = FakeEngine()
        runs_table = tables["runs"]
        blobs = BlobStore(boto3.client("s3", region_name=REGION), BUCKET)
        step_context = StepContext(
            runs=RunStore(runs_table),
            ledger=ToolCallLedger(runs_table),
            threads=ThreadStore(tables["threads"]),
            engine=lambda name: engine,
            run_settings=settings,
            tool_settings=ToolSettings(),
            tool_functions={"get_table_schema": "arn:schema", "query_database": "arn:query"},
            messages=MessageStore(tables["messages"], blobs, inline_bytes=32_768),
            start_execution=starter,
            blobs=blobs,
            usage=UsageStore(tables["threads"]),
            cost_settings=CostSettings(),
        )
        repairs = RepairContext(
            steps=step_context,
            stepfunctions=stepfunctions,
            state_machine_arn=machine,
        )
        yield RepairWorld(repairs, engine, starter, stepfunctions, tables)


def step(run: RunRecord, status: str = "in_progress") -> StepInput:
    return StepInput(run_id=run.id, settings=POLL, run=RunProgress(status=status))


def run_mid_tool_round(world: RepairWorld, *, purpose: str = "repair") -> tuple[RunRecord, list[str]]:
    """Alice's run, started by the API (the lock, its execution) and by Start run, whose model asked for two
    tools: the calls are open upstream, as when an execution dies in Run tools. Returns it and the calls."""
    ctx = world.steps
    thread = alices_thread(ctx, purpose=purpose)
    run = run_record(thread)
    ctx.threads.acquire(thread, run.id)
    ctx.runs.create(run)
    ctx.runs.update(run.id, execution_arn=world.starter(run.id))
    start_steps.start_run(step(run, "queued"), ctx)
    calls = [
        UpstreamToolCall(call_id="call_schema", name="get_table_schema", arguments="{}"),
        UpstreamToolCall(call_id="call_query", name="query_database", arguments='{"query": "SELECT 1"}'),
    ]
    world.engine.polls = [UpstreamRun(status="completed", tool_calls=calls, usage=USAGE)]
    assert check_steps.check_run(step(run), ctx).status == "requires_action"
    return ctx.runs.get(run.id), [call.call_id for call in calls]


def queued_behind(world: RepairWorld, run: RunRecord) -> RunRecord:
    """Another run of the same thread, posted with ``if_busy=enqueue``."""
    ctx = world.steps
    thread = ctx.threads.get(run.user_id, run.thread_id)
    queued = run_record(thread, message="and then?")
    ctx.runs.create(queued)
    assert ctx.threads.enqueue(thread, queued.id) is not None
    return queued


def status_change(
    world: RepairWorld, run_id: str, status: str, *, error: str | None = None, cause: str | None = None
) -> dict[str, Any]:
    """The event EventBridge delivers for the run's execution, as the Step Functions documentation shows it
    (dates in epoch milliseconds, the input as a string)."""
    now = clock.now()
    arn = world.execution_arn(run_id)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": world.repairs.state_machine_arn,
            "name": run_id,
            "status": status,
            "startDate": int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000),
            "stopDate": int(now.timestamp() * 1000),
            "input": json.dumps({"run_id": run_id}),
            "output": None,
            "inputDetails": {"included": True},
            "outputDetails": None,
            "error": error,
            "cause": cause,
        },
    }


def change_of(event: dict[str, Any]) -> ExecutionStatusChange:
    return ExecutionStatusChangeEvent.model_validate(event).detail
