"""What happened, over HTTP on the local stack: a thread's runs (GET /v1/threads/{thread_id}/runs) newest first,
page by page, and a run's execution state by state (GET /v1/runs/{run_id}/trace), for its user and operators."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from threadrunner.settings import OperatorSettings

from local.auth import issue_token
from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run

QUESTION = "What were total sales by region last quarter?"


def _run(client: httpx.Client, thread: dict[str, Any], message: str = QUESTION, **options: Any) -> str:
    accepted = client.post(f"/v1/threads/{thread['id']}/runs", json={"message": message, **options})
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["id"])


def _times(state: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(state["entered_at"]), datetime.fromisoformat(state["exited_at"])


def test_a_two_round_tool_runs_trace_lists_every_state_in_order_with_durations(
    alice: httpx.Client, local_stack: LocalStack
) -> None:
    # Given a run that called the tools in two rounds and completed
    run = wait_for_run(alice, _run(alice, new_thread(alice, "traced")))
    assert run["status"] == "completed", run
    local_stack.wait_for_execution(run["execution"]["arn"])  # the run completes a state before its execution
    # When alice reads its trace
    response = alice.get(f"/v1/runs/{run['id']}/trace")
    # Then it lists every state the execution entered, in order, as the execution history tells them
    assert response.status_code == 200, response.text
    trace = response.json()
    names = [state["name"] for state in trace["states"]]
    assert names == [step.name for step in local_stack.execution_trace(run["execution"]["arn"])]
    assert names[0] == "Start run" and names[-1] == "Run completed"
    assert names.count("Run tools") == 2 and names.count("Submit tool outputs") == 2
    assert names.index("Run tools") < names.index("Submit tool outputs") < names.index("Finish run")
    # each with when it was entered and left, and how long it took (no error: nothing failed)
    for state in trace["states"]:
        entered, exited = _times(state)
        assert state["duration_ms"] == round((exited - entered).total_seconds() * 1000) >= 0, state
        assert state["error"] is None
    entered_in_order = [_times(state)[0] for state in trace["states"]]
    assert entered_in_order == sorted(entered_in_order)
    assert trace["transitions"] == len(trace["states"])
    # and the execution, whose link on the local stack is this trace (there is no console to go to)
    assert trace["execution"] == {
        "arn": run["execution"]["arn"],
        "console_url": f"{local_stack.api_url}/v1/runs/{run['id']}/trace",
        "status": "SUCCEEDED",
    }
    assert httpx.get(trace["execution"]["console_url"], headers=alice.headers).json() == trace
    # nothing the states took in or gave out: no tool output, no answer
    assert run["tool_calls"][2]["output"][:40] not in response.text
    assert "sales" not in response.text.lower()


def test_a_threads_runs_are_listed_newest_first_page_by_page(alice: httpx.Client) -> None:
    # Given a thread with three runs, one after the other
    thread = new_thread(alice, "listed")
    run_ids = [wait_for_run(alice, _run(alice, thread, f"question {n}"))["id"] for n in range(3)]
    # When alice lists them two at a time
    first = alice.get(f"/v1/threads/{thread['id']}/runs", params={"limit": 2})
    assert first.status_code == 200, first.text
    second = alice.get(f"/v1/threads/{thread['id']}/runs", params={"limit": 2, "after": first.json()["next"]})
    assert second.status_code == 200, second.text
    # Then they come newest first, the second page ending the list
    assert [run["id"] for run in first.json()["runs"]] == run_ids[:0:-1]
    assert first.json()["next"] == run_ids[1]
    assert [run["id"] for run in second.json()["runs"]] == run_ids[:1]
    assert second.json()["next"] is None
    # and each run as GET /v1/runs/{run_id} answers it
    newest = first.json()["runs"][0]
    assert newest == alice.get(f"/v1/runs/{run_ids[2]}").json()
    # an after that is no run of this thread is not found
    other = new_thread(alice, "listed elsewhere")
    stray = alice.get(f"/v1/threads/{other['id']}/runs", params={"after": run_ids[0]})
    assert stray.status_code == 404 and stray.json()["code"] == "not_found"


def test_a_queued_run_has_no_states_and_no_status(alice: httpx.Client, upstream: EmulatorServer) -> None:
    # Given a run queued behind one that never finishes
    upstream.script(Plan.never_finishes())
    thread = new_thread(alice, "queued trace")
    _run(alice, thread, "take your time")
    queued = _run(alice, thread, "after you", if_busy="enqueue")
    # When its trace is read, Then it is empty and says there is no execution yet
    response = alice.get(f"/v1/runs/{queued}/trace")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "states": [],
        "transitions": 0,
        "execution": {"arn": None, "console_url": None, "status": None},
    }


def test_another_users_thread_and_run_are_not_found_but_an_operator_reads_the_trace(
    alice: httpx.Client, client_for: Callable[[str], httpx.Client], local_stack: LocalStack
) -> None:
    # Given alice's thread with a completed run
    thread = new_thread(alice, "private history")
    run = wait_for_run(alice, _run(alice, thread, "How many customers?"))
    local_stack.wait_for_execution(run["execution"]["arn"])
    bob = client_for("bob-history")
    # When bob asks for her thread's runs and her run's trace, Then neither is found
    for path in (f"/v1/threads/{thread['id']}/runs", f"/v1/runs/{run['id']}/trace"):
        response = bob.get(path)
        assert response.status_code == 404 and response.json()["code"] == "not_found", path
    # but an operator reads her run's trace, the same one she reads
    operator_token = issue_token("operator-history", groups=[OperatorSettings().admin_group])
    with httpx.Client(
        base_url=local_stack.api_url, headers={"Authorization": f"Bearer {operator_token}"}, timeout=30
    ) as operator:
        as_operator = operator.get(f"/v1/runs/{run['id']}/trace")
        assert as_operator.status_code == 200, as_operator.text
        assert as_operator.json() == alice.get(f"/v1/runs/{run['id']}/trace").json()
        assert as_operator.json()["execution"]["status"] == "SUCCEEDED"
        # the operator's reach is the trace: her thread's runs stay hers
        assert operator.get(f"/v1/threads/{thread['id']}/runs").status_code == 404
