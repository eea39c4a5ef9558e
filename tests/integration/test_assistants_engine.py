"""The assistants engine through the real openai SDK against the emulator's Assistants v2 API.

Every exchange is validated against the OpenAI OpenAPI description (the ``emulator`` fixture). The
assistant registry keeps its records in moto DynamoDB.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from openai import OpenAI
from threadrunner import clock
from threadrunner.engines.assistant_sync import AssistantRegistry
from threadrunner.engines.assistants_v2 import AssistantsEngine
from threadrunner.engines.base import AssistantDefinition, RunRequest, ToolOutput, ToolSpec, UpstreamRun
from threadrunner.errors import (
    UpstreamError,
    UpstreamOutcomeUnknown,
    UpstreamQuotaExceeded,
    UpstreamRateLimited,
)
from threadrunner.models.records import RunRecord
from threadrunner.stores.upstream_assistants import UpstreamAssistantStore

from local.emulator import EmulatorServer, Plan
from tests.support.aws import moto_tables

pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # SDK calls in the tests

QUESTION = "What were total sales by region last quarter?"
TOOLS = [
    ToolSpec(
        name="get_table_schema",
        description="Columns of one table.",
        parameters={"type": "object", "properties": {"table": {"type": "string"}}, "required": ["table"]},
    ),
    ToolSpec(
        name="query_database",
        description="One read-only SELECT.",
        parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    ),
]
ANALYST = AssistantDefinition(
    name="data-analyst", instructions="You are a careful data analyst.", model="gpt-4.1-mini", tools=TOOLS
)
ROWS = {"columns": ["region", "total_sales", "orders"], "rows": [["North", 1234.5, 7], ["South", 99.0, 2]]}


@pytest.fixture
def registry() -> Iterator[AssistantRegistry]:
    with moto_tables() as tables:
        yield AssistantRegistry(UpstreamAssistantStore(tables["runs"]), "test")


@pytest.fixture
def engine(openai_client: OpenAI, registry: AssistantRegistry) -> AssistantsEngine:
    return AssistantsEngine(openai_client, registry)


def _request(thread_id: str) -> RunRequest:
    return RunRequest(
        upstream_thread_id=thread_id,
        model="gpt-4.1-mini",
        instructions=f"{ANALYST.instructions}\n\nCurrent date: 2026-10-15",
        tools=TOOLS,
        metadata={"threadrunner_run_id": "run_1"},
        assistant=ANALYST,
    )


def _run(thread_id: str, *run_ids: str) -> RunRecord:
    now = clock.now()
    return RunRecord(
        id="run_1",
        thread_id="thr_1",
        user_id="alice",
        assistant="data-analyst",
        engine="assistants",
        model="gpt-4.1-mini",
        message=QUESTION,
        created_at=now,
        deadline_at=now + timedelta(minutes=5),
        upstream_thread_id=thread_id,
        response_ids=list(run_ids),
    )


def _settle(engine: AssistantsEngine, run: RunRecord, polls: int = 10) -> UpstreamRun:
    for _ in range(polls):
        upstream = engine.poll(run)
        if upstream.status not in ("queued", "in_progress"):
            return upstream
    raise AssertionError("the run did not settle")


def test_a_question_runs_two_tool_rounds_on_one_upstream_run(
    engine: AssistantsEngine, emulator: EmulatorServer
) -> None:
    # Given a thread and the demo model
    thread_id = engine.create_thread({"threadrunner_thread_id": "thr_1"})
    # When the run starts, it asks for both schemas
    run_id = engine.start(_request(thread_id), QUESTION)
    first = _settle(engine, _run(thread_id, run_id))
    assert first.status == "requires_action"
    assert [(c.name, json.loads(c.arguments)) for c in first.tool_calls] == [
        ("get_table_schema", {"table": "sales"}),
        ("get_table_schema", {"table": "customers"}),
    ]
    # and submitting their outputs continues the same upstream run, which then asks for the query
    outputs = [ToolOutput(call_id=c.call_id, output='{"columns": []}') for c in first.tool_calls]
    assert engine.submit_tool_outputs(_request(thread_id), _run(thread_id, run_id), outputs) == run_id
    second = _settle(engine, _run(thread_id, run_id, run_id))
    assert [c.name for c in second.tool_calls] == ["query_database"]
    assert "2026-07-01" in json.loads(second.tool_calls[0].arguments)["query"]  # Q3, from the date we sent
    # Then the answer is the run's assistant message, built from the rows, with the run's total usage
    rows = [ToolOutput(call_id=second.tool_calls[0].call_id, output=json.dumps(ROWS))]
    assert engine.submit_tool_outputs(_request(thread_id), _run(thread_id, run_id, run_id), rows) == run_id
    done = _settle(engine, _run(thread_id, run_id, run_id, run_id))
    assert done.status == "completed" and done.error is None
    assert "- North: 1,234.50 (7 orders)" in (done.answer or "")
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens > 0
    # The user message went in with the run (one call), against the synced assistant
    creates = [e for e in emulator.exchanges if e.method == "POST" and e.path.endswith("/runs")]
    assert len(creates) == 1
    body = creates[0].request_json
    assert body["additional_messages"] == [{"role": "user", "content": QUESTION}]
    assert body["assistant_id"].startswith("asst_")
    assert [tool["function"]["name"] for tool in body["tools"]] == ["get_table_schema", "query_database"]


def test_a_failed_run_reports_its_last_error(engine: AssistantsEngine, emulator: EmulatorServer) -> None:
    emulator.script(Plan.fail(code="server_error", message="the model crashed"))
    thread_id = engine.create_thread({})
    upstream = _settle(engine, _run(thread_id, engine.start(_request(thread_id), "hi")))
    assert upstream.status == "failed"
    assert upstream.error is not None and upstream.error.model_dump() == {
        "code": "server_error",
        "message": "the model crashed",
    }
    assert upstream.usage.prompt_tokens > 0 and upstream.usage.completion_tokens == 0


def test_an_incomplete_run_keeps_its_partial_answer(
    engine: AssistantsEngine, emulator: EmulatorServer
) -> None:
    emulator.script(Plan.incomplete(text="Partial answer"))
    thread_id = engine.create_thread({})
    upstream = _settle(engine, _run(thread_id, engine.start(_request(thread_id), "hi")))
    assert upstream.status == "incomplete"
    assert upstream.answer == "Partial answer"
    assert upstream.error is not None and upstream.error.code == "incomplete"


def test_cancel_goes_through_cancelling_to_cancelled(
    engine: AssistantsEngine, emulator: EmulatorServer
) -> None:
    emulator.script(Plan.never_finishes())
    thread_id = engine.create_thread({})
    run = _run(thread_id, engine.start(_request(thread_id), "take your time"))
    assert engine.poll(run).status == "in_progress"
    engine.cancel(run)
    # cancelling is still running for the workflow; the next poll shows it stopped
    assert engine.poll(run).status == "cancelled"
    engine.cancel(run)  # an ended run: nothing left to stop, and no error
    assert [e.status for e in emulator.exchanges if e.path.endswith("/cancel")] == [200, 400]


def test_a_run_past_its_expiry_is_expired_and_refuses_tool_outputs(
    engine: AssistantsEngine, emulator: EmulatorServer
) -> None:
    # Given a run waiting for tool outputs that expires in a second
    emulator.script(Plan.expiring(1, Plan.tool_calls([("get_table_schema", {"table": "sales"})])))
    thread_id = engine.create_thread({})
    run = _run(thread_id, engine.start(_request(thread_id), "hi"))
    waiting = _settle(engine, run)
    assert waiting.status == "requires_action"
    time.sleep(1.05)
    # When the outputs arrive too late, the upstream refuses them
    late = [ToolOutput(call_id=waiting.tool_calls[0].call_id, output="{}")]
    with pytest.raises(UpstreamError, match=r"\(400\).*expired"):
        engine.submit_tool_outputs(_request(thread_id), run, late)
    assert engine.poll(run).status == "expired"


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (Plan.http_error(429, "rate_limit_exceeded", retry_after_ms=10), UpstreamRateLimited),
        (Plan.http_error(429, "insufficient_quota"), UpstreamQuotaExceeded),
        # A 5xx answering a create may follow its acceptance (engines/retry.py): never sent again
        (Plan.http_error(503, None), UpstreamOutcomeUnknown),
    ],
)
def test_upstream_errors_keep_their_names(
    engine: AssistantsEngine, emulator: EmulatorServer, failure: object, error: type[Exception]
) -> None:
    thread_id = engine.create_thread({})
    engine.start(_request(thread_id), "warm up")  # syncs the assistant first, so the failure hits the run
    other = engine.create_thread({})
    emulator.script(failure)  # type: ignore[arg-type]
    with pytest.raises(error):
        engine.start(_request(other), "hi")


def test_a_lost_assistant_is_synced_again(
    engine: AssistantsEngine, emulator: EmulatorServer, openai_client: OpenAI
) -> None:
    # Given an assistant synced at first use, then deleted upstream by hand
    thread_id = engine.create_thread({})
    first_run = engine.start(_request(thread_id), "hi")
    _settle(engine, _run(thread_id, first_run))
    lost = openai_client.beta.threads.runs.retrieve(first_run, thread_id=thread_id).assistant_id
    openai_client.beta.assistants.delete(lost)
    # When the next run starts
    second_run = engine.start(_request(thread_id), "again")
    # Then a new assistant was created and the run went through
    found = openai_client.beta.threads.runs.retrieve(second_run, thread_id=thread_id).assistant_id
    assert found != lost
    assert [a.id for a in openai_client.beta.assistants.list().data] == [found]


def test_deleting_a_thread_twice_is_fine(engine: AssistantsEngine, emulator: EmulatorServer) -> None:
    thread_id = engine.create_thread({})
    engine.delete_thread(thread_id)
    engine.delete_thread(thread_id)
    assert [e.status for e in emulator.exchanges if e.method == "DELETE"] == [200, 404]


def test_without_a_registry_the_engine_deletes_threads_but_starts_no_runs(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    # Given the engine as thread cleanup builds it (no assistant registry)
    engine = AssistantsEngine(openai_client)
    thread_id = engine.create_thread({})
    with pytest.raises(UpstreamError, match="cannot start runs"):
        engine.start(_request(thread_id), "hi")
    engine.delete_thread(thread_id)
    assert [(e.method, e.status) for e in emulator.exchanges] == [("POST", 200), ("DELETE", 200)]
