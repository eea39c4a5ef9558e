"""Check run's relay of a streamed response into the run's event log (workflow/stream_relay.py), against the
emulator in time-based mode (the words spread over the model's time) through the real SDK and moto DynamoDB:
a hand-off in the middle resumes after the cursor, a retried relay logs nothing twice, and the deltas joined
are the final answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from openai import OpenAI
from threadrunner import clock
from threadrunner.engines.base import RunRequest
from threadrunner.engines.responses import ResponsesEngine
from threadrunner.models.records import RunRecord
from threadrunner.models.run_events import RunEventType
from threadrunner.settings import RunSettings, ToolSettings
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore
from threadrunner.stores.tool_call_ledger import ToolCallLedger
from threadrunner.workflow import stream_relay
from threadrunner.workflow.context import StepContext

from local.emulator import EmulatorServer, Plan
from tests.support.aws import moto_tables
from tests.support.openai_contract import validate_exchange
from tests.support.runs import started_run

ANSWER = (
    "North sold 1,200, South 950, East 1,430 and West 1,010 last quarter; East grew the fastest of all four."
)
MODEL_SECONDS = 1.5


@pytest.fixture(scope="module")
def upstream() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, model_seconds=MODEL_SECONDS) as server:
        yield server


@pytest.fixture
def engine(upstream: EmulatorServer) -> Iterator[ResponsesEngine]:
    upstream.reset()
    with OpenAI(base_url=upstream.base_url, api_key="sk-test", max_retries=0) as client:
        yield ResponsesEngine(client)
    for exchange in upstream.exchanges:
        validate_exchange(exchange)


@pytest.fixture
def ctx(engine: ResponsesEngine) -> Iterator[StepContext]:
    with moto_tables() as tables:
        yield StepContext(
            runs=RunStore(tables["runs"]),
            ledger=ToolCallLedger(tables["runs"]),
            threads=ThreadStore(tables["threads"]),
            engine=lambda name: engine,
            run_settings=RunSettings(),
            tool_settings=ToolSettings(),
            tool_functions={},
            messages=MessageStore(
                tables["messages"],
                BlobStore(boto3.client("s3", region_name="us-east-1"), "test"),
                inline_bytes=1024,
            ),
            start_execution=lambda run_id: f"arn:{run_id}",
        )


def _streamed_run(
    ctx: StepContext, engine: ResponsesEngine, upstream: EmulatorServer, *, stream: bool = True
) -> RunRecord:
    """A run whose round 0 is a background response created as Start run creates it."""
    upstream.script(Plan.message(ANSWER))
    run = started_run(ctx, model="m")
    conversation = engine.create_thread({})
    request = RunRequest(upstream_thread_id=conversation, model="m", instructions="Be brief.", tools=[])
    creator = engine.streaming(lambda *chunk: None) if stream else engine
    response_id = creator.start(request, run.message)
    ctx.runs.update(
        run.id,
        stream=stream,
        upstream_thread_id=conversation,
        response_ids=[response_id],
        round_started_at=clock.now(),
    )
    return ctx.runs.get(run.id)


def _deltas(ctx: StepContext, run: RunRecord) -> list[dict[str, Any]]:
    return [
        e.data for e in ctx.runs.events.after(run.id, 0, limit=1000) if e.type is RunEventType.message_delta
    ]


def _final_answer(engine: ResponsesEngine, run: RunRecord) -> str:
    polled = engine.poll(run)
    assert polled.status == "completed"
    return polled.answer or ""


def test_a_hand_off_in_the_middle_resumes_after_the_cursor(
    ctx: StepContext, engine: ResponsesEngine, upstream: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a streamed response that takes 1.5 s to write its answer
    monkeypatch.setattr(stream_relay, "CATCH_UP_SECONDS", 0.5)
    run = _streamed_run(ctx, engine, upstream)
    # When a first Check run relays for half a second (its budget), then hands off
    first = stream_relay.relay(run, ctx, seconds=0.0, final=False)
    cursor = ctx.runs.get(run.id).stream_cursor
    assert cursor is not None and cursor == first.stream_cursor
    assert not cursor.ended and cursor.after is not None
    relayed_first = _deltas(ctx, run)
    assert relayed_first and "".join(d["text"] for d in relayed_first) != ANSWER  # some words, not all
    # Then the next Check run reads on after the cursor, to the end
    second = stream_relay.relay(ctx.runs.get(run.id), ctx, seconds=10.0, final=False)
    assert second.stream_cursor is not None and second.stream_cursor.ended
    # (a stream is recorded once its last byte is sent, which the relay may have read a moment before)
    deadline = time.monotonic() + 5
    while True:
        starts = [e for e in upstream.exchanges if e.method == "GET" and e.query.get("stream") == ["true"]]
        resumed = [e for e in starts if e.query.get("starting_after") == [str(cursor.after)]]
        if resumed or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert [e.query.get("starting_after") for e in starts][-1] == [str(cursor.after)]
    # and the deltas, joined, are the final answer: nothing dropped, nothing twice
    deltas = _deltas(ctx, run)
    assert "".join(d["text"] for d in deltas) == _final_answer(engine, run) == ANSWER
    assert [d["through"] for d in deltas] == sorted({d["through"] for d in deltas})
    assert {d["round"] for d in deltas} == {0}


def test_a_retried_relay_appends_nothing_twice(
    ctx: StepContext, engine: ResponsesEngine, upstream: EmulatorServer
) -> None:
    # Given a streamed response relayed to its end
    run = _streamed_run(ctx, engine, upstream)
    stream_relay.relay(run, ctx, seconds=10.0, final=False)
    logged = _deltas(ctx, run)
    # When the step runs again as if it had died before saving its cursor (the run as it first read it)
    again = stream_relay.relay(run, ctx, seconds=10.0, final=False)
    # Then it logs nothing more, and its cursor says the stream ended
    assert _deltas(ctx, run) == logged
    assert "".join(d["text"] for d in logged) == _final_answer(engine, run)
    assert again.stream_cursor is not None and again.stream_cursor.ended
    # and once the cursor says so, a later Check run does not open the stream again
    opened = len(upstream.exchanges)
    assert stream_relay.relay(ctx.runs.get(run.id), ctx, seconds=10.0, final=True) is not None
    assert len(upstream.exchanges) == opened


def test_a_finished_response_is_relayed_whole_even_with_no_time_left(
    ctx: StepContext, engine: ResponsesEngine, upstream: EmulatorServer
) -> None:
    # Given a streamed response that finished before any Check run looked
    run = _streamed_run(ctx, engine, upstream)
    answer = ""
    while not answer:
        time.sleep(0.2)
        answer = engine.poll(run).answer or ""
    # When Check run relays with its budget spent
    stream_relay.relay(run, ctx, seconds=-5.0, final=True)
    # Then every word is logged all the same
    assert "".join(d["text"] for d in _deltas(ctx, run)) == answer


def test_a_run_without_stream_is_not_relayed(
    ctx: StepContext, engine: ResponsesEngine, upstream: EmulatorServer
) -> None:
    # Given a run created without "stream"
    run = _streamed_run(ctx, engine, upstream, stream=False)
    # When Check run would relay, Then nothing is read or logged
    assert stream_relay.relay(run, ctx, seconds=10.0, final=False) is run
    assert _deltas(ctx, run) == []
    assert not [e for e in upstream.exchanges if e.query.get("stream")]
    create = next(e for e in upstream.exchanges if e.path == "/v1/responses")
    assert "stream" not in create.request_json
