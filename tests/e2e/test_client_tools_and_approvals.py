"""Client tools and approval gates over HTTP on the local stack: the run waits for the application
(requires_action with a required_action), POST /v1/runs/{id}/tool_outputs or /approvals resumes it through
its task token, and nobody answering in time ends it timed_out with action_expired."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from local.emulator import EmulatorServer, Plan
from tests.e2e.conftest import BOTH_COMPLETIONS, start_run, wait_for_action, wait_for_run

pytestmark = BOTH_COMPLETIONS  # the scenarios, whether webhooks or polls tell that the model is done

COUNT = {"query": "SELECT COUNT(*) AS n FROM customers"}


def _outputs_sent(upstream: EmulatorServer) -> dict[str, str]:
    """call id -> the output handed to the model, whatever the engine: a Responses function_call_output
    (new response or conversation item), an Assistants tool output or a Chat Completions tool message."""
    sent: dict[str, str] = {}

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "function_call_output":
                sent[node["call_id"]] = node["output"]
            elif "tool_call_id" in node and ("output" in node or node.get("role") == "tool"):
                sent[node["tool_call_id"]] = node.get("output", node.get("content"))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    for exchange in upstream.exchanges:
        if exchange.method == "POST":
            visit(exchange.request_json)
    return sent


@pytest.mark.parametrize("engine", ["responses", "assistants", "chat"])
def test_a_client_tool_call_waits_for_the_application_and_its_output_reaches_the_model(
    alice: httpx.Client, upstream: EmulatorServer, helper: str, engine: str, configure: Callable[..., None]
) -> None:
    configure(THREADRUNNER_ENGINE=engine)
    # Given a model that asks for the client tool and then answers
    upstream.script(Plan.tool_calls([("get_weather", {"city": "Paris"})]), Plan.message("Sunny in Paris."))
    run_id = start_run(alice, helper, f"client-round-trip-{engine}")
    # When the run waits for the application
    waiting = wait_for_action(alice, run_id)
    action = waiting["required_action"]
    assert action["type"] == "submit_tool_outputs"
    assert [(c["name"], json.loads(c["arguments"])) for c in action["tool_calls"]] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert action["expires_at"]
    # The model was offered the client tool with its schema
    offered = json.dumps(
        [exchange.request_json for exchange in upstream.exchanges if exchange.method == "POST"]
    )
    assert '"get_weather"' in offered and "The weather in a city, from the application." in offered
    call_id = action["tool_calls"][0]["id"]
    answered = alice.post(
        f"/v1/runs/{run_id}/tool_outputs",
        json={"tool_outputs": [{"tool_call_id": call_id, "output": "sunny"}]},
    )
    # Then the run resumes and completes, and the model got the application's output
    assert answered.status_code == 200, answered.text
    assert answered.json()["id"] == run_id
    run = wait_for_run(alice, run_id)
    assert run["status"] == "completed", run
    assert run["answer"] == "Sunny in Paris."
    assert _outputs_sent(upstream)[call_id] == "sunny"
    [call] = run["tool_calls"]
    assert call["runs_on"] == "client" and call["output"] is not None and call["id"] == call_id
    # And repeating the accepted submission is harmless
    again = alice.post(
        f"/v1/runs/{run_id}/tool_outputs",
        json={"tool_outputs": [{"tool_call_id": call_id, "output": "sunny"}]},
    )
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "completed"


def test_submissions_that_do_not_answer_exactly_the_waiting_calls_are_refused(
    alice: httpx.Client,
    upstream: EmulatorServer,
    helper: str,
    client_for: Callable[[str], httpx.Client],
) -> None:
    upstream.script(
        Plan.tool_calls([("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})]),
        Plan.message("Done."),
    )
    run_id = start_run(alice, helper, "client-refusals")
    action = wait_for_action(alice, run_id)["required_action"]
    first, second = (call["id"] for call in action["tool_calls"])
    url = f"/v1/runs/{run_id}/tool_outputs"

    def post(outputs: list[dict[str, str]], client: httpx.Client = alice) -> httpx.Response:
        return client.post(url, json={"tool_outputs": outputs})

    unknown = post([{"tool_call_id": "call_nope", "output": "x"}, {"tool_call_id": second, "output": "y"}])
    assert unknown.status_code == 422 and unknown.json()["field"] == "tool_outputs.0.tool_call_id", (
        unknown.text
    )
    missing = post([{"tool_call_id": first, "output": "x"}])
    assert missing.status_code == 422 and missing.json()["field"] == "tool_outputs", missing.text
    assert second in missing.json()["message"]
    repeated = post([{"tool_call_id": first, "output": "x"}, {"tool_call_id": first, "output": "y"}])
    assert repeated.status_code == 422 and repeated.json()["field"] == "tool_outputs.1.tool_call_id"
    too_large = post(
        [{"tool_call_id": first, "output": "x" * 16_001}, {"tool_call_id": second, "output": "y"}]
    )
    assert too_large.status_code in (413, 422), too_large.text
    assert too_large.json()["field"] == "tool_outputs.0.output"
    assert post([{"tool_call_id": first, "output": "x"}], client_for("bob")).status_code == 404
    wrong_kind = alice.post(
        f"/v1/runs/{run_id}/approvals", json={"decisions": [{"tool_call_id": first, "approve": True}]}
    )
    assert wrong_kind.status_code == 409, wrong_kind.text
    # Nothing refused changed the run: it still waits, and a right answer resumes it
    assert alice.get(f"/v1/runs/{run_id}").json()["status"] == "requires_action"
    accepted = post([{"tool_call_id": first, "output": "x"}, {"tool_call_id": second, "output": "y"}])
    assert accepted.status_code == 200, accepted.text
    assert wait_for_run(alice, run_id)["status"] == "completed"
    # A different submission once the run no longer waits is a conflict
    late = post([{"tool_call_id": first, "output": "other"}, {"tool_call_id": second, "output": "y"}])
    assert late.status_code == 409, late.text


def test_a_run_nobody_answers_ends_timed_out_with_action_expired_and_its_call_closed_upstream(
    alice: httpx.Client, upstream: EmulatorServer, helper: str, configure: Callable[..., None]
) -> None:
    configure(THREADRUNNER_CLIENT_TOOL_TIMEOUT_SECONDS="2")
    upstream.script(Plan.tool_calls([("get_weather", {"city": "Paris"})]), Plan.message("never"))
    run_id = start_run(alice, helper, "client-expiry")
    call_id = wait_for_action(alice, run_id)["required_action"]["tool_calls"][0]["id"]
    run = wait_for_run(alice, run_id, timeout=30)
    assert run["status"] == "timed_out", run
    assert run["error"]["code"] == "action_expired"
    assert call_id in _outputs_sent(upstream)  # the open call was answered upstream, so the thread goes on
    late = alice.post(
        f"/v1/runs/{run_id}/tool_outputs", json={"tool_outputs": [{"tool_call_id": call_id, "output": "x"}]}
    )
    assert late.status_code == 409


@pytest.mark.parametrize("approve", [True, False])
def test_a_call_that_needs_approval_runs_once_approved_and_a_denied_one_tells_the_model_why(
    alice: httpx.Client, upstream: EmulatorServer, helper: str, approve: bool
) -> None:
    upstream.script(Plan.tool_calls([("query_database", COUNT)]), Plan.message("Counted."))
    run_id = start_run(alice, helper, f"approval-{approve}")
    action = wait_for_action(alice, run_id)["required_action"]
    assert action["type"] == "approve_tool_calls"
    call_id = action["tool_calls"][0]["id"]
    decided = alice.post(
        f"/v1/runs/{run_id}/approvals",
        json={"decisions": [{"tool_call_id": call_id, "approve": approve, "reason": "not today"}]},
    )
    assert decided.status_code == 200, decided.text
    run = wait_for_run(alice, run_id)
    assert run["status"] == "completed", run
    [call] = run["tool_calls"]
    assert call["approval"]["approved"] is approve
    assert call["approval"]["decided_by"] == "alice" and call["approval"]["decided_at"]
    output = json.loads(_outputs_sent(upstream)[call_id])
    if approve:
        assert output["rows"][0][0] > 0
    else:
        assert "denied" in output["error"] and "not today" in output["error"]


def test_approvals_that_nobody_gives_expire(
    alice: httpx.Client, upstream: EmulatorServer, helper: str, configure: Callable[..., None]
) -> None:
    configure(THREADRUNNER_CLIENT_TOOL_TIMEOUT_SECONDS="2")
    upstream.script(Plan.tool_calls([("query_database", COUNT)]), Plan.message("never"))
    run_id = start_run(alice, helper, "approval-expiry")
    call_id = wait_for_action(alice, run_id)["required_action"]["tool_calls"][0]["id"]
    run = wait_for_run(alice, run_id, timeout=30)
    assert run["status"] == "timed_out" and run["error"]["code"] == "action_expired", run
    assert call_id in _outputs_sent(upstream)


def test_the_openapi_document_lists_both_routes_with_their_statuses(alice: httpx.Client) -> None:
    document = alice.get("/v1/openapi.json").json()
    for path, field in (
        ("/v1/runs/{run_id}/tool_outputs", "tool_outputs"),
        ("/v1/runs/{run_id}/approvals", "decisions"),
    ):
        operation = document["paths"][path]["post"]
        assert {"200", "404", "409", "422", "415", "401", "429"} <= set(operation["responses"]), path
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        name = schema["$ref"].rsplit("/", 1)[-1]
        assert field in document["components"]["schemas"][name]["required"]
    run = document["components"]["schemas"]["RunOut"]["properties"]
    assert "required_action" in run


def test_cancelling_a_run_that_waits_for_the_application_ends_it_cancelled(
    alice: httpx.Client, upstream: EmulatorServer, helper: str
) -> None:
    upstream.script(Plan.tool_calls([("get_weather", {"city": "Paris"})]), Plan.message("never"))
    run_id = start_run(alice, helper, "client-cancel")
    call_id = wait_for_action(alice, run_id)["required_action"]["tool_calls"][0]["id"]
    assert alice.post(f"/v1/runs/{run_id}/cancel").status_code in (200, 202)
    run = wait_for_run(alice, run_id, timeout=30)
    assert run["status"] == "cancelled", run
    assert call_id in _outputs_sent(upstream)  # closed upstream


def test_a_run_left_waiting_is_aborted_between_tests(
    alice: httpx.Client, upstream: EmulatorServer, helper: str, local_stack: Any
) -> None:
    # The local stack's abort wakes a .waitForTaskToken task (moto would wait until its timeout)
    upstream.script(Plan.tool_calls([("get_weather", {"city": "Paris"})]), Plan.message("never"))
    wait_for_action(alice, start_run(alice, helper, "client-left-waiting"))
    local_stack.abort_executions(timeout=10)


def test_a_turn_with_both_waits_for_the_approvals_then_for_the_client_outputs(
    alice: httpx.Client, upstream: EmulatorServer, helper: str
) -> None:
    upstream.script(
        Plan.tool_calls(
            [
                ("query_database", COUNT),
                ("get_weather", {"city": "Oslo"}),
                ("get_table_schema", {"table": "sales"}),
            ]
        ),
        Plan.message("Both done."),
    )
    run_id = start_run(alice, helper, "mixed-turn")
    approvals = wait_for_action(alice, run_id)["required_action"]
    assert approvals["type"] == "approve_tool_calls" and len(approvals["tool_calls"]) == 1
    decisions = {"decisions": [{"tool_call_id": approvals["tool_calls"][0]["id"], "approve": True}]}
    decided = alice.post(f"/v1/runs/{run_id}/approvals", json=decisions)
    assert decided.status_code == 200, decided.text
    outputs = decided.json()["required_action"]
    # (a repeat of the accepted approvals is answered with the run, unchanged)
    repeated = alice.post(f"/v1/runs/{run_id}/approvals", json=decisions)
    assert repeated.status_code == 200 and repeated.json()["required_action"] == outputs
    assert outputs["type"] == "submit_tool_outputs" and outputs["expires_at"] == approvals["expires_at"]
    weather = outputs["tool_calls"][0]["id"]
    answered = alice.post(
        f"/v1/runs/{run_id}/tool_outputs",
        json={"tool_outputs": [{"tool_call_id": weather, "output": "rain"}]},
    )
    assert answered.status_code == 200, answered.text
    run = wait_for_run(alice, run_id)
    assert run["status"] == "completed", run
    sent = _outputs_sent(upstream)
    assert sent[weather] == "rain" and len(sent) == 3  # the server tool of the same turn ran as usual
