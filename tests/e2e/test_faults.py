"""Fault injection through the emulator: every upstream fault ends the run in its documented state.

Table-driven: each fault is scripted on the emulator (or, for a Lambda crash, raised in the step), a user
asks, and the run must end with the status and error code of the table. Whatever the ending, the user's
message stays in the thread's log and the thread is free: a next run on it starts and completes. Retries
are fast here (small waits, a 1 s client timeout); every answer the emulator gave, except the wire faults
scripted on purpose, is checked against the OpenAI OpenAPI description.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from openai import OpenAI
from threadrunner.engines.responses import ResponsesEngine
from threadrunner.stores.runs import RunStore
from threadrunner.workflow import tool_steps

from local.emulator import EmulatorServer, Plan
from local.emulator.script import HttpErrorPlan
from tests.e2e.conftest import new_thread, wait_for_run

FAST_RETRIES = {
    "THREADRUNNER_RETRY_BASE_SECONDS": "0.01",
    "THREADRUNNER_RETRY_MAX_BACKOFF_SECONDS": "0.02",
    "THREADRUNNER_RETRY_MAX_RETRY_AFTER_SECONDS": "0.1",
    "THREADRUNNER_OPENAI_TIMEOUT_SECONDS": "1",
}


class StepCrashed(Exception):
    """A step's Lambda failing mid-way with an error of its own (its type names the Catch's error)."""


# A step's Lambda killed mid-way (out of memory, timed out): Lambda reports Runtime.ExitError, which the
# workflow retries once. The local Lambda dispatch names the error after the exception's type.
LambdaKilled = type("Runtime.ExitError", (Exception,), {})
# A tool's Lambda that ran past its timeout, as Lambda reports it.
ToolLambdaTimedOut = type("Sandbox.Timedout", (Exception,), {})


@dataclass(frozen=True)
class Fault:
    plans: tuple[Plan | HttpErrorPlan, ...]
    status: str
    error: str | None  # the run's error code
    engine: str = "responses"
    creates: int | None = None  # how many create calls the upstream accepted (answered 200)
    attempts: int | None = None  # how many it was sent, refusals included (Responses only here)
    setup: Callable[[Any], None] | None = field(default=None)  # gets the test's Scenario


FAULTS: dict[str, Fault] = {
    "429 burst, then success": Fault(
        (Plan.http_error(429, "rate_limit_exceeded", times=3, retry_after_ms=10), Plan.message("ok")),
        "completed",
        None,
        creates=1,
        attempts=4,
    ),
    "500s answering polls, then success": Fault(
        (Plan.http_error(500, None, on="retrieve", times=3), Plan.message("ok")), "completed", None, creates=1
    ),
    # A 5xx answering a create may follow its acceptance (a proxy's 502/504, the upstream's own 500/503):
    # the create is never sent again, and the run fails rather than risk running the model twice.
    "a 500 answering a create (never sent again)": Fault(
        (Plan.http_error(500, None),), "failed", "UpstreamOutcomeUnknown", creates=0, attempts=1
    ),
    "a 502 answering a create (never sent again)": Fault(
        (Plan.http_error(502, None),), "failed", "UpstreamOutcomeUnknown", creates=0, attempts=1
    ),
    "a poll slower than the client timeout": Fault(
        (Plan.http_hang(3.0, on="retrieve"), Plan.message("ok")), "completed", None
    ),
    "a create slower than the client timeout": Fault(
        (Plan.http_hang(3.0, on="create"),), "failed", "UpstreamOutcomeUnknown"
    ),
    "malformed JSON answering a poll": Fault(
        (Plan.malformed_json(on="retrieve"), Plan.message("ok")), "completed", None
    ),
    "malformed JSON answering a create": Fault(
        (Plan.malformed_json(on="create"),), "failed", "UpstreamOutcomeUnknown", creates=1
    ),
    "the upstream run failed (Assistants)": Fault(
        (Plan.fail("server_error", "The model failed to respond."),), "failed", "server_error", "assistants"
    ),
    "the upstream run incomplete (Assistants)": Fault(
        (Plan.incomplete("max_output_tokens"),), "failed", "incomplete", "assistants"
    ),
    "the upstream run expired (Assistants)": Fault(
        (Plan.expiring(0, Plan.message("too late")),), "failed", "expired", "assistants"
    ),
    "the response failed": Fault((Plan.fail("server_error", "boom"),), "failed", "server_error"),
    "insufficient_quota 429 (never retried)": Fault(
        (Plan.http_error(429, "insufficient_quota"),),
        "failed",
        "UpstreamQuotaExceeded",
        creates=0,
        attempts=1,
    ),
    "400 (never retried)": Fault(
        (Plan.http_error(400, "invalid_value"),), "failed", "UpstreamRejected", creates=0, attempts=1
    ),
    "401 (never retried)": Fault(
        (Plan.http_error(401, "invalid_api_key"),), "failed", "UpstreamUnauthorized", creates=0, attempts=1
    ),
    "403 (never retried)": Fault(
        (Plan.http_error(403, None),), "failed", "UpstreamUnauthorized", creates=0, attempts=1
    ),
    "404: the conversation was deleted upstream": Fault(
        (), "failed", "UpstreamThreadGone", setup=lambda scenario: scenario.delete_conversation()
    ),
    "a start stuck in the upstream queue (cancelled, started again)": Fault(
        (Plan.stays_queued(), Plan.message("ok")),
        "completed",
        None,
        creates=2,
        setup=lambda scenario: scenario.configure(THREADRUNNER_MAX_QUEUED_SECONDS="0.3"),
    ),
    "a start stuck in the upstream queue twice": Fault(
        (Plan.stays_queued(), Plan.stays_queued()),
        "failed",
        "UpstreamStuckQueued",
        "assistants",
        creates=2,
        setup=lambda scenario: scenario.configure(THREADRUNNER_MAX_QUEUED_SECONDS="0.3"),
    ),
    "more tool calls than the environment allows": Fault(
        (Plan.tool_calls([("get_table_schema", {"table": "sales"})] * 3),),
        "failed",
        "ToolCallLimitExceeded",
        setup=lambda scenario: scenario.configure(THREADRUNNER_MAX_TOOL_CALLS_PER_RUN="2"),
    ),
    "Start run killed after its create (Assistants: retried, finds its run)": Fault(
        (Plan.message("ok"),),
        "completed",
        None,
        "assistants",
        creates=1,
        setup=lambda scenario: scenario.kill_before_recording(),
    ),
    "Start run killed after its create (chat: retried, finds its completion)": Fault(
        (Plan.message("ok"),),
        "completed",
        None,
        "chat",
        creates=1,
        setup=lambda scenario: scenario.kill_before_recording(),
    ),
    "a tool's Lambda killed each time (the model gets an error output)": Fault(
        (Plan.tool_calls([("get_table_schema", {"table": "sales"})]), Plan.message("ok")),
        "completed",
        None,
        creates=2,
        setup=lambda scenario: scenario.kill_tool_lambdas(),
    ),
    "a Lambda step crash": Fault(
        (Plan.slow(2, Plan.message("never read")),),
        "failed",
        "StepCrashed",
        setup=lambda scenario: scenario.crash_next_poll(),
    ),
}


@dataclass
class Scenario:
    alice: httpx.Client
    upstream: EmulatorServer
    monkeypatch: pytest.MonkeyPatch
    thread: dict[str, Any]
    configure: Callable[..., None]

    def run(self, message: str) -> dict[str, Any]:
        accepted = self.alice.post(f"/v1/threads/{self.thread['id']}/runs", json={"message": message})
        assert accepted.status_code == 202, accepted.text
        return wait_for_run(self.alice, accepted.json()["id"], timeout=60)

    def delete_conversation(self) -> None:
        """The thread had a run (so it has a conversation), which is then deleted upstream by hand."""
        self.upstream.script(Plan.message("first"))
        assert self.run("hello")["status"] == "completed"
        conversation = next(
            e.response_json["id"]
            for e in self.upstream.exchanges
            if e.method == "POST" and e.path == "/v1/conversations"
        )
        with OpenAI(base_url=self.upstream.base_url, api_key="sk-test-e2e", max_retries=0) as client:
            client.conversations.delete(conversation)

    def kill_before_recording(self) -> None:
        """Start run's Lambda is killed once, after the upstream create and before it records the id."""
        record_round = RunStore.record_round
        killed: list[bool] = []

        def killed_once(store: RunStore, *arguments: Any) -> None:
            if not killed:
                killed.append(True)
                raise LambdaKilled("Runtime exited with error: signal: killed")
            record_round(store, *arguments)

        self.monkeypatch.setattr(RunStore, "record_round", killed_once)

    def kill_tool_lambdas(self) -> None:
        """Every tool Lambda is killed past its timeout (Sandbox.Timedout) when it runs its tool."""

        def killed(*arguments: Any) -> Any:
            raise ToolLambdaTimedOut("Task timed out after 60.00 seconds")

        self.monkeypatch.setattr(tool_steps, "call_tool", killed)

    def crash_next_poll(self) -> None:
        """Check run's Lambda dies once, in the middle of its poll."""
        poll = ResponsesEngine.poll
        crashed: list[bool] = []

        def crash_once(engine: ResponsesEngine, run: Any) -> Any:
            if not crashed:
                crashed.append(True)
                raise StepCrashed("the Lambda died")
            return poll(engine, run)

        self.monkeypatch.setattr(ResponsesEngine, "poll", crash_once)


def creates(upstream: EmulatorServer, *, accepted: bool = True) -> int:
    """Calls that start a model turn; ``accepted``: only those answered 200 (an Assistants start refused
    404 because the emulator forgot the assistant is synced again and retried, by design)."""
    return sum(
        1
        for e in upstream.exchanges
        if e.method == "POST"
        and (e.path in ("/v1/responses", "/v1/chat/completions") or e.path.endswith("/runs"))
        and (e.status == 200 or not accepted)
    )


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_ends_in_its_documented_state_keeping_the_message_and_freeing_the_thread(
    name: str,
    alice: httpx.Client,
    upstream: EmulatorServer,
    configure: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fault = FAULTS[name]
    configure(THREADRUNNER_ENGINE=fault.engine, **FAST_RETRIES)
    thread = new_thread(alice, f"fault-{list(FAULTS).index(name)}")  # a thread of its own
    scenario = Scenario(alice, upstream, monkeypatch, thread, configure)
    if fault.setup is not None:
        fault.setup(scenario)
    before, attempts_before = creates(upstream), creates(upstream, accepted=False)
    # Given the fault scripted on the upstream
    upstream.script(*fault.plans)
    # When the user asks
    run = scenario.run("What were total sales by region last quarter?")
    # Then the run ends in the documented state
    assert run["status"] == fault.status, run
    assert (run["error"] or {}).get("code") == fault.error, run["error"]
    if fault.error is not None:
        assert run["error"]["message"], "a failed run says why"
    if fault.creates is not None:
        assert creates(upstream) - before == fault.creates
    if fault.attempts is not None:
        assert creates(upstream, accepted=False) - attempts_before == fault.attempts
    assert upstream.pending_plans == 0, "the whole fault was played"
    # and the user's message is in the thread's log
    log = alice.get(f"/v1/threads/{scenario.thread['id']}/messages", params={"limit": 100}).json()
    assert [m["content"] for m in log["messages"] if m["run_id"] == run["id"] and m["role"] == "user"] == [
        "What were total sales by region last quarter?"
    ]
    # and the thread is free: the next run starts and completes
    upstream.script(Plan.message("Fine again."))
    after = scenario.run("Again?")
    assert (after["status"], after["answer"]) == ("completed", "Fine again."), after
