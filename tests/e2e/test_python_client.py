"""threadrunner.client over HTTP on the local stack, as an application uses it: threads, a run waited for
through its event log, the event reader resuming after lost connections with no gap and no duplicate, client
tool outputs and approvals, an upload through the presigned POST and a generated file downloaded, typed errors;
the async client the same way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from threadrunner.client import (
    AsyncThreadrunner,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    Threadrunner,
)
from threadrunner.models.api_runs import ApprovalIn, ToolOutputIn
from threadrunner.models.run_events import RunEventType

from local.auth import issue_token
from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.support.uploads import SALES_CSV

COUNT = {"query": "SELECT COUNT(*) AS n FROM customers"}


@pytest.fixture
def client(local_stack: LocalStack, upstream: EmulatorServer) -> Iterator[Threadrunner]:
    with Threadrunner(local_stack.api_url, issue_token("carol")) as client:
        yield client


class DroppingTransport(httpx.BaseTransport):
    """Loses some events answers: before the request reaches the API, or after it answered (the events in
    that answer never reach the reader)."""

    def __init__(self, drops: dict[int, str]) -> None:
        self._inner = httpx.HTTPTransport()
        self._drops = drops  # the nth events request (1-based) -> "before" or "after"
        self.events_requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/events"):
            return self._inner.handle_request(request)
        self.events_requests += 1
        drop = self._drops.get(self.events_requests)
        if drop == "before":
            raise httpx.ConnectError("connection refused (simulated)", request=request)
        response = self._inner.handle_request(request)
        response.read()
        if drop == "after":
            raise httpx.ReadError("connection reset (simulated)", request=request)
        return response


def test_get_or_create_answers_the_same_thread_for_the_same_assistant_and_purpose(
    client: Threadrunner,
) -> None:
    # When the same assistant and purpose are asked for twice
    first = client.threads.get_or_create("data-analyst", "client-thread")
    again = client.threads.get_or_create("data-analyst", "client-thread")
    # Then both are the same thread; another purpose is another thread
    assert again.id == first.id and first.assistant == "data-analyst"
    assert client.threads.get_or_create("data-analyst", "client-other").id != first.id


def test_wait_follows_a_two_round_tool_run_to_its_answer(
    client: Threadrunner, upstream: EmulatorServer
) -> None:
    # Given a model that calls a tool, then answers
    upstream.script(Plan.tool_calls([("query_database", COUNT)]), Plan.message("There are 42."))
    thread = client.threads.get_or_create("data-analyst", "client-wait")
    # When a run is created and waited for
    created = client.runs.create(thread.id, "How many customers?")
    run = client.runs.wait(created.id, timeout=60)
    # Then the run ended with the answer and its tool call, and its log ends with run.completed
    assert created.status == "queued"
    assert run.status == "completed" and run.answer == "There are 42."
    assert [call.name for call in run.tool_calls] == ["query_database"]
    events = list(client.runs.events(run.id))
    assert events[-1].type == RunEventType.run_completed
    # And the thread lists it
    assert [listed.id for listed in client.runs.list(thread.id).runs][:1] == [run.id]


def test_events_resume_after_lost_connections_without_a_gap_or_a_duplicate(
    local_stack: LocalStack, upstream: EmulatorServer
) -> None:
    # Given a two-round run, and a connection that fails before one events request and loses the answer of
    # two others (the first answer, with events in it, and one later)
    upstream.script(Plan.tool_calls([("query_database", COUNT)]), Plan.message("There are 42."))
    transport = DroppingTransport({1: "after", 2: "before", 4: "after"})
    with Threadrunner(local_stack.api_url, issue_token("carol"), transport=transport) as client:
        thread = client.threads.get_or_create("data-analyst", "client-resume")
        run = client.runs.create(thread.id, "How many customers?")
        # When its events are read as they happen
        events = list(client.runs.events(run.id))
        everything = list(client.runs.events(run.id))  # read again, from the start, with no drops left
    # Then every event came once, in order, up to the one that ends the run
    assert transport.events_requests >= 4
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert [event.model_dump() for event in events] == [event.model_dump() for event in everything]
    assert events[-1].type == RunEventType.run_completed
    types = [event.type for event in events]
    assert RunEventType.tool_call_completed in types


def test_a_client_tool_call_is_answered_with_submit_tool_outputs(
    client: Threadrunner, upstream: EmulatorServer, helper: str
) -> None:
    # Given a model that asks for the application's tool, then answers
    upstream.script(Plan.tool_calls([("get_weather", {"city": "Paris"})]), Plan.message("Sunny in Paris."))
    thread = client.threads.get_or_create(helper, "client-tools")
    run = client.runs.create(thread.id, "Weather in Paris?")
    # When the caller waits: wait returns as soon as the run needs the caller
    waiting = client.runs.wait(run.id, timeout=60)
    assert waiting.status == "requires_action" and waiting.required_action is not None
    action = waiting.required_action
    assert action.type == "submit_tool_outputs"
    [call] = action.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    # And answers the call, then waits again
    client.runs.submit_tool_outputs(run.id, [ToolOutputIn(tool_call_id=call.id, output="sunny")])
    done = client.runs.wait(run.id, timeout=60)
    # Then the run completed with the model's answer, the client call's output recorded
    assert done.status == "completed" and done.answer == "Sunny in Paris."
    assert [(c.name, c.runs_on) for c in done.tool_calls] == [("get_weather", "client")]


def test_a_tool_call_that_needs_approval_is_approved(
    client: Threadrunner, upstream: EmulatorServer, helper: str
) -> None:
    # Given a model that calls a tool needing approval, then answers
    upstream.script(Plan.tool_calls([("query_database", COUNT)]), Plan.message("Counted."))
    thread = client.threads.get_or_create(helper, "client-approvals")
    run = client.runs.create(thread.id, "How many customers?")
    waiting = client.runs.wait(run.id, timeout=60)
    assert waiting.required_action is not None and waiting.required_action.type == "approve_tool_calls"
    [call] = waiting.required_action.tool_calls
    # When the caller approves it
    client.runs.approve(run.id, [ApprovalIn(tool_call_id=call.id, approve=True, reason="fine")])
    done = client.runs.wait(run.id, timeout=60)
    # Then the tool ran and the run completed, the approval recorded on the call
    assert done.status == "completed" and done.answer == "Counted."
    [ran] = done.tool_calls
    assert ran.approval is not None and ran.approval.approved and ran.approval.reason == "fine"
    assert ran.output and "error" not in json.loads(ran.output)
    # And answering again, now that nothing waits, is a typed 409
    with pytest.raises(ConflictError) as conflict:
        client.runs.approve(run.id, [ApprovalIn(tool_call_id=call.id, approve=False)])
    assert conflict.value.status == 409


def test_an_upload_is_staged_and_a_generated_file_downloads(
    client: Threadrunner, upstream: EmulatorServer, tmp_path: Path
) -> None:
    # Given a CSV on disk
    path = tmp_path / "sales.csv"
    path.write_bytes(SALES_CSV)
    thread = client.threads.get_or_create("data-analyst", "client-files")
    # When it is uploaded: declared, POSTed to its presigned URL, staged
    file = client.files.upload(path, thread.id)
    # Then it is ready, with its name, type and size
    assert (file.status, file.filename, file.content_type, file.size_bytes) == (
        "ready",
        "sales.csv",
        "text/csv",
        len(SALES_CSV),
    )
    # And a run that analyses it generates files that download
    run = client.runs.wait(client.runs.create(thread.id, "Summarise it.", file_ids=[file.id]).id, timeout=60)
    assert run.status == "completed", run.error
    assert run.files, "the code interpreter's chart and summary"
    downloaded = {output.name: client.files.download(output) for output in run.files}
    assert all(len(data) == output.size_bytes for output in run.files for data in [downloaded[output.name]])


def test_errors_are_typed_and_carry_the_api_code_message_and_field(client: Threadrunner) -> None:
    thread = client.threads.get_or_create("data-analyst", "client-errors")
    # A run that is not there (or is another user's)
    with pytest.raises(NotFoundError) as missing:
        client.runs.get("run_" + "0" * 26)
    assert missing.value.status == 404 and missing.value.code and missing.value.message
    # A blank message: a 422 naming the field
    with pytest.raises(InvalidRequestError) as invalid:
        client.runs.create(thread.id, "   ")
    assert invalid.value.status == 422 and invalid.value.field == "message"
    # An unknown assistant
    with pytest.raises(InvalidRequestError) as unknown:
        client.threads.get_or_create("no-such-assistant", "x")
    assert unknown.value.field == "assistant"


def test_the_async_client_waits_and_reads_events_the_same_way(
    local_stack: LocalStack, upstream: EmulatorServer
) -> None:
    upstream.script(Plan.tool_calls([("query_database", COUNT)]), Plan.message("There are 42."))

    async def scenario() -> tuple[str, str | None, list[int]]:
        async with AsyncThreadrunner(local_stack.api_url, issue_token("carol")) as client:
            thread = await client.threads.get_or_create("data-analyst", "client-async")
            run = await client.runs.create(thread.id, "How many customers?")
            done = await client.runs.wait(run.id, timeout=60)
            seqs = [event.seq async for event in client.runs.events(run.id)]
            return done.status, done.answer, seqs

    status, answer, seqs = asyncio.run(scenario())
    assert (status, answer) == ("completed", "There are 42.")
    assert seqs == list(range(1, len(seqs) + 1))
