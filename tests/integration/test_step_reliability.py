"""Reliable steps on each engine: the real engines against the emulator over moto DynamoDB.

Exactly once:
A Lambda can die after its create call returned and before the step recorded the id (injected here by
making ``RunStore.record_round`` raise once). The re-executed step looks upstream before creating again:
the emulator's exchange log proves that one create went out and the run still ends as it should. Collect
outputs and Finish run may run twice with no second effect. Every exchange is checked against the OpenAI
OpenAPI description (the ``emulator`` fixture).

Every run ends: a start stuck in the upstream's queue is cancelled and started again once, then fails the
run; a run asking for more tool calls than the environment allows fails with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
from openai import OpenAI
from threadrunner import clock
from threadrunner.engines import new_client
from threadrunner.engines.assistant_sync import AssistantRegistry
from threadrunner.engines.assistants_v2 import AssistantsEngine
from threadrunner.engines.base import Engine
from threadrunner.engines.chat import ChatEngine
from threadrunner.engines.responses import ResponsesEngine
from threadrunner.engines.retry import RetryPolicy
from threadrunner.errors import UpstreamNotFound, UpstreamOutcomeUnknown, UpstreamThreadGone
from threadrunner.models.records import RunRecord
from threadrunner.models.workflow import FinishRunInput, PollSettings, RunProgress, RunToolInput, StepInput
from threadrunner.settings import RunSettings, ToolSettings
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.chat_rounds import ChatRoundStore, ChatState
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore
from threadrunner.stores.tool_call_ledger import ToolCallLedger
from threadrunner.stores.upstream_assistants import UpstreamAssistantStore
from threadrunner.workflow import check_steps, finish_steps, start_steps, tool_steps
from threadrunner.workflow.context import StepContext
from threadrunner.workflow.invocation import lambda_invocation

from local.emulator import EmulatorServer, Plan
from tests.support.aws import moto_tables
from tests.support.runs import started_run

pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")

POLL = PollSettings(first_wait_seconds=0, max_wait_seconds=0, max_polls=40)
RETRIES = RetryPolicy(
    max_attempts=2, base_seconds=0.01, max_backoff_seconds=0.02, max_retry_after_seconds=0.1, budget_seconds=1
)
ENGINES = ("responses", "assistants", "chat")
# The upstream calls that start a model turn, per engine (what must happen once per round).
CREATE_PATHS: dict[str, Callable[[str, str], bool]] = {
    "responses": lambda method, path: method == "POST" and path == "/v1/responses",
    "assistants": lambda method, path: (
        method == "POST"
        and path.startswith("/v1/threads/")
        and (path.endswith("/runs") or path.endswith("/submit_tool_outputs"))
    ),
    "chat": lambda method, path: method == "POST" and path == "/v1/chat/completions",
}


class StepCrashed(Exception):
    """The Lambda died between the upstream create and the record of its id."""


@dataclass
class World:
    ctx: StepContext
    upstream: EmulatorServer
    engine: str

    def new_run(self, purpose: str | None = None) -> RunRecord:
        """A run on the thread for ``purpose`` (default: a thread of its own)."""
        return started_run(
            self.ctx,
            engine=self.engine,
            message="How many rows has the sales table?",
            purpose=purpose or clock.new_id("p"),
            log_message=True,
        )

    def creates(self) -> int:
        is_create = CREATE_PATHS[self.engine]
        return sum(1 for e in self.upstream.exchanges if is_create(e.method, e.path))

    def step(self, run: RunRecord, progress: RunProgress | None = None) -> StepInput:
        return StepInput(run_id=run.id, settings=POLL, run=progress or RunProgress(status="queued"))

    def until_settled(self, run: RunRecord, progress: RunProgress) -> RunProgress:
        """Check run until it needs something other than another poll."""
        for _ in range(POLL.max_polls):
            progress = check_steps.check_run(self.step(run, progress), self.ctx)
            if progress.status != "in_progress":
                return progress
        raise AssertionError("the run never settled")

    def run_tools(self, run: RunRecord, progress: RunProgress) -> None:
        for call in progress.tool_calls:
            tool_steps.tool_runner(call.name)(
                RunToolInput(run_id=run.id, call_id=call.call_id, name=call.name), self.ctx
            )

    def finish(self, run: RunRecord, progress: RunProgress, error: Exception | None = None) -> str:
        payload: dict[str, Any] = {"run_id": run.id, "run": progress.model_dump(mode="json")}
        if error is not None:
            payload["error"] = {"Error": type(error).__name__, "Cause": str(error)}
        return str(finish_steps.finish_run(FinishRunInput.model_validate(payload), self.ctx).status)


@pytest.fixture
def make_world(emulator: EmulatorServer) -> Iterator[Callable[..., World]]:
    with moto_tables() as tables:
        runs_table = tables["runs"]
        run_settings = RunSettings()
        messages = MessageStore(
            tables["messages"],
            BlobStore(boto3.client("s3", region_name="us-east-1"), "test"),
            inline_bytes=32_768,
        )
        client = new_client("sk-test", emulator.base_url, 5.0, RETRIES, sleep=lambda _: None)
        engines: dict[str, Engine] = {
            "responses": ResponsesEngine(client),
            "assistants": AssistantsEngine(
                client, AssistantRegistry(UpstreamAssistantStore(runs_table), "test")
            ),
            "chat": ChatEngine(
                client, ChatState(messages, ChatRoundStore(runs_table), run_settings.context_budget)
            ),
        }

        def make(engine: str, **settings: Any) -> World:
            ctx = StepContext(
                runs=RunStore(runs_table),
                ledger=ToolCallLedger(runs_table),
                threads=ThreadStore(tables["threads"]),
                engine=engines.__getitem__,
                run_settings=RunSettings(**settings),
                tool_settings=ToolSettings(),
                tool_functions={"get_table_schema": "arn:schema"},
                messages=messages,
                start_execution=lambda run_id: (
                    f"arn:aws:states:us-east-1:123456789012:execution:run:{run_id}"
                ),
            )
            return World(ctx=ctx, upstream=emulator, engine=engine)

        yield make


def crash_recording_once(monkeypatch: pytest.MonkeyPatch, round_number: int) -> None:
    """The next record of ``round_number``'s upstream id dies (after the create call returned)."""
    original = RunStore.record_round
    left = [1]

    def record_round(store: RunStore, run_id: str, number: int, *recorded: Any) -> None:
        if number == round_number and left[0]:
            left[0] -= 1
            raise StepCrashed(f"died before recording round {number}")
        original(store, run_id, number, *recorded)

    monkeypatch.setattr(RunStore, "record_round", record_round)


def script_one_tool_round(world: World) -> None:
    world.upstream.script(
        Plan.tool_calls([("get_table_schema", {"table": "sales"})]), Plan.message("The sales table has rows.")
    )


@pytest.mark.parametrize("engine", ["assistants", "chat"])
def test_a_start_run_re_executed_after_a_crash_finds_its_upstream_run_and_creates_no_second(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    # Given a run whose Start run dies after the upstream create and before it records the id
    world = make_world(engine)
    script_one_tool_round(world)
    run = world.new_run()
    crash_recording_once(monkeypatch, round_number=0)
    with pytest.raises(StepCrashed):
        start_steps.start_run(world.step(run), world.ctx)
    assert world.creates() == 1
    # When Step Functions runs Start run again
    progress = start_steps.start_run(world.step(run), world.ctx)
    # Then it found the upstream run the first attempt made and created nothing more
    assert world.creates() == 1
    assert len(world.ctx.runs.get(run.id).response_ids) == 1
    # and the run goes on to its answer
    progress = world.until_settled(run, progress)
    assert progress.status == "requires_action"
    world.run_tools(run, progress)
    progress = world.until_settled(run, tool_steps.submit_tool_outputs(world.step(run, progress), world.ctx))
    assert progress.status == "completed"
    finish_steps.collect_outputs(world.step(run, progress), world.ctx)
    assert world.finish(run, progress) == "completed"
    ended = world.ctx.runs.get(run.id)
    assert ended.answer == "The sales table has rows."
    assert world.creates() == 2  # the start and one tool round, each once


@pytest.mark.parametrize("engine", ["assistants", "chat"])
def test_submit_tool_outputs_re_executed_after_a_crash_submits_once(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    # Given a run that asked for a tool, whose Submit tool outputs dies after the upstream call
    world = make_world(engine)
    script_one_tool_round(world)
    run = world.new_run()
    progress = world.until_settled(run, start_steps.start_run(world.step(run), world.ctx))
    world.run_tools(run, progress)
    crash_recording_once(monkeypatch, round_number=1)
    with pytest.raises(StepCrashed):
        tool_steps.submit_tool_outputs(world.step(run, progress), world.ctx)
    # When the step runs again, and once more after that (a retry of a retry)
    tool_steps.submit_tool_outputs(world.step(run, progress), world.ctx)
    again = tool_steps.submit_tool_outputs(world.step(run, progress), world.ctx)
    # Then the outputs went upstream once and the run completes
    assert world.creates() == 2
    assert len(world.ctx.runs.get(run.id).response_ids) == 2
    progress = world.until_settled(run, again)
    assert progress.status == "completed"
    finish_steps.collect_outputs(world.step(run, progress), world.ctx)
    assert world.finish(run, progress) == "completed"


@pytest.mark.parametrize("round_number", [0, 1])
def test_a_lost_response_id_fails_the_run_rather_than_asking_the_model_twice(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, round_number: int
) -> None:
    """The Responses API cannot list responses: a crash in that window ends the run, never a second turn."""
    # Given a responses run whose step dies after creating a response, before recording it
    world = make_world("responses")
    script_one_tool_round(world)
    run = world.new_run()
    progress = RunProgress(status="queued")
    if round_number == 1:
        progress = world.until_settled(run, start_steps.start_run(world.step(run), world.ctx))
        world.run_tools(run, progress)
    step = start_steps.start_run if round_number == 0 else tool_steps.submit_tool_outputs
    crash_recording_once(monkeypatch, round_number)
    with pytest.raises(StepCrashed):
        step(world.step(run, progress), world.ctx)
    # When the step runs again, it refuses to create again
    with pytest.raises(UpstreamOutcomeUnknown) as refused:
        step(world.step(run, progress), world.ctx)
    assert world.creates() == round_number + 1
    # Then Finish run (the Catch) fails the run with that error and releases the thread
    assert world.finish(run, progress, refused.value) == "failed"
    ended = world.ctx.runs.get(run.id)
    assert ended.error is not None and ended.error.code == "UpstreamOutcomeUnknown"
    assert world.ctx.threads.get("alice", run.thread_id).active_run_id is None
    assert world.creates() == round_number + 1


@pytest.mark.parametrize("engine", ["assistants", "chat"])
def test_a_crash_before_the_create_went_out_creates_it_on_the_next_attempt(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    # Given a Start run that claimed round 0 and died before calling the upstream
    world = make_world(engine)
    world.upstream.script(Plan.message("Hello."))
    run = world.new_run()
    world.ctx.runs.claim_round(run.id, 0)
    # When Start run runs again
    progress = start_steps.start_run(world.step(run), world.ctx)
    # Then it looked, found nothing, and created the round once
    assert world.creates() == 1
    assert world.until_settled(run, progress).status == "completed"


@pytest.mark.parametrize("engine", ENGINES)
def test_collect_outputs_and_finish_run_re_run_change_nothing(
    make_world: Callable[..., World], engine: str
) -> None:
    # Given a completed run
    world = make_world(engine)
    world.upstream.script(Plan.message("Hello."))
    run = world.new_run()
    progress = world.until_settled(run, start_steps.start_run(world.step(run), world.ctx))
    assert progress.status == "completed"
    # When Collect outputs and Finish run each run twice
    for _ in range(2):
        finish_steps.collect_outputs(world.step(run, progress), world.ctx)
    first = world.ctx.runs.get(run.id)
    statuses = [world.finish(run, progress) for _ in range(2)]
    # Then the run ended once, with its answer and metrics, and the thread's log has each message once
    assert statuses == ["completed", "completed"]
    ended = world.ctx.runs.get(run.id)
    assert ended.answer == first.answer == "Hello."
    assert ended.completed_at is not None and ended.metrics is not None
    log, _ = world.ctx.messages.page(run.thread_id, limit=50, after=None)
    assert [(m.role, m.content) for m in log] == [("user", run.message), ("assistant", "Hello.")]
    assert world.ctx.threads.get("alice", run.thread_id).active_run_id is None
    assert world.creates() == 1


def age_the_round(world: World, run: RunRecord, seconds: float = 60) -> None:
    """As if the current round's response had been created ``seconds`` ago (no sleeping)."""
    world.ctx.runs.update(run.id, round_started_at=clock.now() - timedelta(seconds=seconds))


def cancels(world: World) -> int:
    return sum(1 for e in world.upstream.exchanges if e.method == "POST" and e.path.endswith("/cancel"))


@pytest.mark.parametrize("engine", ["responses", "assistants"])
def test_a_start_stuck_in_the_queue_is_cancelled_and_started_again_once(
    make_world: Callable[..., World], engine: str
) -> None:
    # Given an upstream that never picks up the first response, then answers the second
    world = make_world(engine, max_queued_seconds=30)
    world.upstream.script(Plan.stays_queued(), Plan.message("Hello."))
    run = world.new_run()
    progress = start_steps.start_run(world.step(run), world.ctx)
    # queued, not long
    assert check_steps.check_run(world.step(run, progress), world.ctx).status == "in_progress"
    # When it has been queued past the limit
    age_the_round(world, run)
    progress = check_steps.check_run(world.step(run, progress), world.ctx)
    # Then it is cancelled, created again once the cancel has landed, and the run completes
    assert progress.status == "in_progress" and cancels(world) == 1
    progress = world.until_settled(run, progress)
    assert progress.status == "completed"
    finish_steps.collect_outputs(world.step(run, progress), world.ctx)
    assert world.finish(run, progress) == "completed"
    ended = world.ctx.runs.get(run.id)
    assert ended.answer == "Hello." and len(ended.response_ids) == 1 and ended.queued_restarts == 1
    assert world.creates() == 2


@pytest.mark.parametrize("engine", ["responses", "assistants"])
def test_a_start_stuck_twice_fails_the_run_with_a_clear_error(
    make_world: Callable[..., World], engine: str
) -> None:
    # Given an upstream that never picks up any response
    world = make_world(engine, max_queued_seconds=30)
    world.upstream.script(Plan.stays_queued(), Plan.stays_queued())
    run = world.new_run()
    progress = start_steps.start_run(world.step(run), world.ctx)
    # When the start stays queued past the limit, and its restart too
    age_the_round(world, run)
    progress = check_steps.check_run(world.step(run, progress), world.ctx)
    for _ in range(3):  # until the cancel has landed and the restart is created
        progress = check_steps.check_run(world.step(run, progress), world.ctx)
        if world.creates() == 2:
            break
    age_the_round(world, run)
    progress = check_steps.check_run(world.step(run, progress), world.ctx)
    # Then the run fails, saying why, with both responses cancelled and the thread free
    assert progress.status == "failed"
    assert world.finish(run, progress) == "failed"
    ended = world.ctx.runs.get(run.id)
    assert ended.error is not None and ended.error.code == "UpstreamStuckQueued"
    assert "queued for more than 30 s again, after a restart" in ended.error.message
    assert world.creates() == 2 and cancels(world) == 2
    assert world.ctx.threads.get("alice", run.thread_id).active_run_id is None


@pytest.mark.parametrize("engine", ENGINES)
def test_more_tool_calls_than_the_environment_allows_fail_the_run(
    make_world: Callable[..., World], engine: str
) -> None:
    # Given an environment allowing 2 tool calls per run, and a model that asks for 3 at once
    world = make_world(engine, max_tool_calls_per_run=2)
    world.upstream.script(Plan.tool_calls([("get_table_schema", {"table": t}) for t in ("a", "b", "c")]))
    run = world.new_run()
    # When Check run sees them
    progress = world.until_settled(run, start_steps.start_run(world.step(run), world.ctx))
    # Then the run fails with a clear error and no tool runs
    assert progress.status == "failed" and not progress.tool_calls
    assert world.finish(run, progress) == "failed"
    ended = world.ctx.runs.get(run.id)
    assert ended.error is not None and ended.error.code == "ToolCallLimitExceeded"
    assert ended.error.message == "the model asked for 3 tool calls in this run; this environment allows 2"
    assert world.ctx.threads.get("alice", run.thread_id).active_run_id is None


@pytest.mark.parametrize("ending", ["cancelled", "timed_out"])
def test_a_run_ended_while_its_tools_were_awaited_leaves_the_conversation_usable(
    make_world: Callable[..., World], ending: str
) -> None:
    # Given a responses run whose model waits for a tool output
    world = make_world("responses")
    world.upstream.script(Plan.tool_calls([("get_table_schema", {"table": "sales"})]), Plan.message("Hi."))
    run = world.new_run("shared")
    progress = world.until_settled(run, start_steps.start_run(world.step(run), world.ctx))
    assert progress.status == "requires_action"
    # When the run ends before the outputs are submitted (the user cancels, or the deadline passes)
    if ending == "cancelled":
        world.ctx.runs.request_cancel(run.id)
        progress = check_steps.check_run(world.step(run, progress), world.ctx)
    else:
        progress = check_steps.cancel_run(world.step(run, progress), world.ctx)
    assert world.finish(run, progress) == ending
    # Then the open call was answered upstream with an error, and the thread's next run completes
    closed = [e for e in world.upstream.exchanges if e.method == "POST" and e.path.endswith("/items")]
    assert [item["type"] for item in closed[0].request_json["items"]] == ["function_call_output"]
    following = world.new_run("shared")
    done = world.until_settled(following, start_steps.start_run(world.step(following), world.ctx))
    assert done.status == "completed"


def test_a_call_left_open_on_the_conversation_is_closed_before_the_next_start(
    make_world: Callable[..., World],
) -> None:
    # Given a thread whose conversation holds a function call nobody answered (a response whose id was
    # lost finished with a tool call)
    world = make_world("responses")
    world.upstream.script(Plan.message("First."))
    first = world.new_run("open-call")
    progress = world.until_settled(first, start_steps.start_run(world.step(first), world.ctx))
    finish_steps.collect_outputs(world.step(first, progress), world.ctx)
    assert world.finish(first, progress) == "completed"
    conversation = world.ctx.runs.get(first.id).upstream_thread_id or ""
    world.upstream.script(Plan.tool_calls([("get_table_schema", {"table": "sales"})]))
    with OpenAI(base_url=world.upstream.base_url, api_key="sk-test", max_retries=0) as client:
        orphan = client.responses.create(model="m", input="hi", conversation=conversation, background=True)
        while (ended := client.responses.retrieve(orphan.id)).status in ("queued", "in_progress"):
            pass
    open_calls = [item.call_id for item in ended.output if item.type == "function_call"]
    assert len(open_calls) == 1
    # When the thread's next run starts
    world.upstream.script(Plan.message("Second."))
    following = world.new_run("open-call")
    progress = world.until_settled(following, start_steps.start_run(world.step(following), world.ctx))
    # Then the open call was answered with an error output and the run completes
    assert progress.status == "completed"
    closed = [e for e in world.upstream.exchanges if e.method == "POST" and e.path.endswith("/items")]
    assert [item["call_id"] for item in closed[0].request_json["items"]] == open_calls


@pytest.mark.parametrize("deleted", [True, False])
def test_a_404_forgets_the_conversation_only_when_the_conversation_itself_is_gone(
    make_world: Callable[..., World], deleted: bool
) -> None:
    # Given a thread with a conversation from an earlier run
    world = make_world("responses")
    world.upstream.script(Plan.message("First."))
    first = world.new_run("gone")
    progress = world.until_settled(first, start_steps.start_run(world.step(first), world.ctx))
    assert world.finish(first, progress) == "completed"
    conversation = world.ctx.runs.get(first.id).upstream_thread_id
    # When the next start is answered 404: the conversation was deleted, or the endpoint answers 404
    if deleted:
        with OpenAI(base_url=world.upstream.base_url, api_key="sk-test", max_retries=0) as client:
            client.conversations.delete(conversation or "")
    else:
        world.upstream.script(Plan.http_error(404, None))
    following = world.new_run("gone")
    expected = UpstreamThreadGone if deleted else UpstreamNotFound
    with pytest.raises(expected):
        start_steps.start_run(world.step(following), world.ctx)
    # Then only a conversation that is gone is forgotten (the next run starts a new one); otherwise the
    # thread keeps it (a dead endpoint is an outage, and the conversation may still need deleting)
    kept = world.ctx.threads.get("alice", following.thread_id).upstream_thread_id
    assert kept == (None if deleted else conversation)


def _response_gets(world: World, since: int) -> list[str]:
    return [
        e.path
        for e in world.upstream.exchanges[since:]
        if e.method == "GET" and e.path.startswith("/v1/responses/")
    ]


def test_collect_outputs_does_not_fetch_the_finished_response_again(make_world: Callable[..., World]) -> None:
    # Given a run whose Check run saw its response completed
    world = make_world("responses")
    world.upstream.script(Plan.message("The sales table has 42 rows."))
    run = world.new_run()
    progress = world.until_settled(run, start_steps.start_run(world.step(run), world.ctx))
    assert progress.status == "completed"
    seen = len(world.upstream.exchanges)
    # When Collect outputs runs (twice, as a retried step may)
    finish_steps.collect_outputs(world.step(run, progress), world.ctx)
    finish_steps.collect_outputs(world.step(run, progress), world.ctx)
    # Then it kept the answer Check run had, with no GET of the response
    assert _response_gets(world, seen) == []
    assert world.ctx.runs.get(run.id).answer == "The sales table has 42 rows."
    assert world.finish(run, progress) == "completed"


def test_check_run_polls_inside_one_invocation_while_the_model_call_is_young(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a response that stays in progress for three retrieves, and Check run allowed to wait 40 s
    world = make_world("responses")
    world.upstream.script(Plan.slow(3, Plan.message("Done.")))
    pauses: list[float] = []
    monkeypatch.setattr(check_steps, "_sleep", pauses.append)
    settings = POLL.model_copy(update={"check_wait_seconds": 40})
    run = world.new_run()
    start_steps.start_run(world.step(run), world.ctx)
    # When one Check run runs
    progress = check_steps.check_run(
        StepInput(run_id=run.id, settings=settings, run=RunProgress(status="in_progress")), world.ctx
    )
    # Then it polled until the answer, about every second, and the workflow needs no Wait
    assert progress.status == "completed"
    assert pauses == [1.0, 1.0, 1.0]


def test_check_run_hands_back_to_a_wait_when_its_lambda_runs_short(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world("responses")
    world.upstream.script(Plan.slow(3, Plan.message("Done.")))
    monkeypatch.setattr(check_steps, "_sleep", lambda seconds: None)
    settings = POLL.model_copy(update={"check_wait_seconds": 40})
    run = world.new_run()
    start_steps.start_run(world.step(run), world.ctx)

    class Context:  # a Lambda with less left than one more upstream call may take
        def get_remaining_time_in_millis(self) -> int:
            return 5_000

    with lambda_invocation(Context()):
        progress = check_steps.check_run(
            StepInput(run_id=run.id, settings=settings, run=RunProgress(status="in_progress")), world.ctx
        )
    assert progress.status == "in_progress"
