"""Runs whose execution died, on the local stack: it delivers Step Functions' status-change event to
reconcile_run as the EventBridge rule does in AWS, and `threadrunner sweep` runs the same repair for what no
event reached. Whatever killed the execution, the run ends failed naming the cause and its thread is free."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from threadrunner.stores.threads import thread_key
from typer.testing import CliRunner

from local.cli import app
from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run
from tests.support.lifecycle import table

# Finish run's Lambda killed every time (a timeout, say): the workflow retries it, then gives up in its
# "Run could not be recorded" state. The local dispatch names the error after the exception's type.
FinishRunKilled = type("Sandbox.Timedout", (Exception,), {})


@pytest.fixture
def one_second_polls(configure: Callable[..., None]) -> None:
    """Runs that take a second or two, so the test can stop them mid-way."""
    configure(THREADRUNNER_POLL_FIRST_SECONDS="1", THREADRUNNER_POLL_MAX_SECONDS="1")


def _post_run(client: httpx.Client, thread_id: str, message: str, **options: str) -> dict[str, Any]:
    response = client.post(f"/v1/threads/{thread_id}/runs", json={"message": message, **options})
    assert response.status_code == 202, response.text
    return dict(response.json())


def _wait_for_status(client: httpx.Client, run_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (run := client.get(f"/v1/runs/{run_id}").json())["status"] != status:
        assert time.monotonic() < deadline, f"run {run_id} never reached {status}: {run['status']}"
        time.sleep(0.05)
    return dict(run)


def _stop_execution(stack: LocalStack, execution_arn: str) -> None:
    """An operator's StopExecution (moto refuses it for the few milliseconds an execution sets itself up)."""
    for _ in range(50):
        try:
            stack.client("stepfunctions").stop_execution(executionArn=execution_arn, cause="stopped by ops")
            return
        except AttributeError:
            time.sleep(0.02)
    raise AssertionError(f"{execution_arn} could not be stopped")


@pytest.mark.usefixtures("one_second_polls")
def test_an_execution_stopped_by_an_operator_ends_its_run_and_the_thread_takes_the_next_at_once(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    upstream.script(Plan.never_finishes(), Plan.message("after the stop"), Plan.message("and on"))
    thread = new_thread(alice, "stopped")
    # Given a run the model is working on, and a run queued behind it
    active = _post_run(alice, thread["id"], "forever")
    queued = _post_run(alice, thread["id"], "next, please", if_busy="enqueue")
    running = _wait_for_status(alice, active["id"], "in_progress")

    # When an operator stops its execution in the console
    _stop_execution(local_stack, running["execution"]["arn"])

    # Then the run ends failed, naming the cause, and its response is cancelled upstream
    ended = wait_for_run(alice, active["id"], timeout=30)
    assert ended["status"] == "failed" and ended["error"]["code"] == "execution_aborted", ended
    assert ended["metrics"]["status"] == "failed" and ended["metrics"]["error"] == "execution_aborted"
    assert any(e.method == "POST" and e.path.endswith("/cancel") for e in upstream.exchanges)
    # and the thread goes to the queued run at once, which completes
    following = wait_for_run(alice, queued["id"], timeout=30)
    assert (following["status"], following["answer"]) == ("completed", "after the stop"), following
    # and the thread takes new runs
    again = wait_for_run(alice, _post_run(alice, thread["id"], "and then?")["id"], timeout=30)
    assert again["status"] == "completed"
    # and the user's message of the stopped run stays in the thread's log
    log = alice.get(f"/v1/threads/{thread['id']}/messages", params={"limit": 100}).json()["messages"]
    assert [m["content"] for m in log if m["run_id"] == active["id"] and m["role"] == "user"] == ["forever"]


def test_a_run_whose_finish_run_kept_failing_is_recorded_by_the_reconciler(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    upstream.script(Plan.message("an answer Finish run never recorded"), Plan.message("fine again"))
    thread = new_thread(alice, "unrecorded")

    def killed(event: Any, context: Any) -> Any:
        raise FinishRunKilled("Task timed out after 90.00 seconds")

    # Given Finish run's Lambda dying on every attempt
    with local_stack.lambdas.replaced("finish_run", killed):
        run = _post_run(alice, thread["id"], "What were total sales by region last quarter?")
        # When the workflow gives up on it ("Run could not be recorded")
        ended = wait_for_run(alice, run["id"], timeout=60)

    execution = local_stack.client("stepfunctions").describe_execution(executionArn=ended["execution"]["arn"])
    assert (execution["status"], execution["error"]) == ("FAILED", "RunNotRecorded")
    # Then the reconciler has ended the run, naming the cause and the workflow's error
    assert ended["status"] == "failed" and ended["error"]["code"] == "execution_failed", ended
    assert "RunNotRecorded" in ended["error"]["message"]
    assert ended["metrics"] is not None and ended["usage"]["total_tokens"] > 0
    # and the thread is free: the next run starts and completes
    again = wait_for_run(alice, _post_run(alice, thread["id"], "Again?")["id"], timeout=30)
    assert (again["status"], again["answer"]) == ("completed", "fine again")


def test_threadrunner_sweep_frees_a_thread_whose_hand_over_was_lost(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    upstream.script(Plan.message("one"), Plan.message("two"))
    thread = new_thread(alice, "lost-hand-over")
    first = wait_for_run(alice, _post_run(alice, thread["id"], "one?")["id"], timeout=30)
    # Given the thread still held by that ended run, as if its hand-over had been lost with its event
    table(local_stack.table_names, "threads").update_item(
        Key=thread_key("alice", thread["id"]),
        UpdateExpression="SET active_run_id = :run",
        ExpressionAttributeValues={":run": first["id"]},
    )
    refused = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "two?"})
    assert refused.status_code == 409 and refused.json()["active_run_id"] == first["id"]

    # When an operator runs `threadrunner sweep` against the local stack
    result = CliRunner().invoke(app, ["sweep", "--url", local_stack.api_url])

    # Then the sweep reports the repair, and the thread takes the next run
    assert result.exit_code == 0, result.output
    assert '"repaired": ' in result.output and '"repaired": 0' not in result.output
    second = wait_for_run(alice, _post_run(alice, thread["id"], "two?")["id"], timeout=30)
    assert (second["status"], second["answer"]) == ("completed", "two")
