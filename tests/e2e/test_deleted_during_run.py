"""A thread deleted while its run waits for the model: the run's execution ends quietly and successfully in
"Run deleted", with no Lambda error, no retry and no "Run could not be recorded" on the way."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread

# Start run's first wait: the deletion and its cleanup land while the execution sits in Wait for model.
FIRST_WAIT_SECONDS = 3


def _until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {timeout} s")
        time.sleep(0.05)


def _failures(stack: LocalStack, execution_arn: str) -> list[dict[str, Any]]:
    """Every failure event of the execution (a Lambda error, a failed task, a failed execution)."""
    history = stack.client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)
    return [event for event in history["events"] if "Failed" in event["type"] or "TimedOut" in event["type"]]


def test_deleting_a_thread_while_its_run_waits_ends_the_execution_in_run_deleted(
    alice: httpx.Client,
    upstream: EmulatorServer,
    local_stack: LocalStack,
    configure: Callable[..., None],
) -> None:
    configure(THREADRUNNER_POLL_FIRST_SECONDS=str(FIRST_WAIT_SECONDS))
    upstream.script(Plan.never_finishes())
    thread = new_thread(alice, "deleted-mid-run")
    # Given a run whose model is working, its execution waiting before the next Check run
    posted = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "a long question"})
    assert posted.status_code == 202, posted.text
    run, execution_arn = posted.json(), posted.json()["execution"]["arn"]
    _until(lambda: alice.get(f"/v1/runs/{run['id']}").json()["status"] == "in_progress", "started")
    deleted_at = time.monotonic()

    # When its thread is deleted (forced: the run is active), and the cleanup removes the run
    assert alice.delete(f"/v1/threads/{thread['id']}", params={"force": "true"}).status_code == 202
    _until(lambda: alice.get(f"/v1/runs/{run['id']}").status_code == 404, "deleted")
    assert time.monotonic() - deleted_at < FIRST_WAIT_SECONDS - 0.5, (
        "the deletion came too late for this test"
    )

    # Then the execution succeeds in "Run deleted", with no error anywhere on the way
    execution = local_stack.wait_for_execution(execution_arn, timeout=30)
    trace = local_stack.execution_trace(execution_arn)
    visited = [step.name for step in trace]
    assert execution["status"] == "SUCCEEDED", visited
    assert visited[-1] == "Run deleted" and "Run could not be recorded" not in visited
    assert _failures(local_stack, execution_arn) == []
    assert all(step.status == "succeeded" and step.attempts <= 1 for step in trace), trace
