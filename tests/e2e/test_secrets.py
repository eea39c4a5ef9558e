"""The upstream key (``sk-test-e2e``, what the local stack's Secrets Manager holds) goes to the upstream and
nowhere else: not in anything logged, not in the workflow's execution history, not in runs or their errors,
not in the functions' environment, even when the upstream quotes it back in an error."""

from __future__ import annotations

import json
import logging
import os

import httpx
import pytest

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run

KEY = "sk-test-e2e"  # tests/e2e/conftest.py gives it to the local stack


def test_the_key_is_in_no_log_state_run_or_function_environment(
    alice: httpx.Client,
    upstream: EmulatorServer,
    local_stack: LocalStack,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level, for the whole scenario
    thread = new_thread(alice, "secrets")
    # Given a run whose model calls both tools before it answers
    upstream.script(
        Plan.tool_calls(
            [
                ("get_table_schema", {"table": "customers"}),
                ("query_database", {"query": "SELECT COUNT(*) AS n FROM customers"}),
            ]
        ),
        Plan.message("There are some customers."),
    )
    completed = wait_for_run(
        alice, alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "Count them"}).json()["id"]
    )
    # and a run the upstream refuses, quoting the key in its error (as a 401 for a wrong key does)
    upstream.script(Plan.http_error(401, "invalid_api_key", message=f"Incorrect API key provided: {KEY}."))
    failed = wait_for_run(
        alice, alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "Again"}).json()["id"]
    )
    assert completed["status"] == "completed" and len(completed["tool_calls"]) == 2, completed
    assert failed["status"] == "failed" and failed["error"]["code"] == "UpstreamUnauthorized", failed
    assert failed["error"]["message"].endswith("Incorrect API key provided: sk-***")
    # The key was really in play: every model call carried it to the upstream
    model_calls = [e for e in upstream.exchanges if e.path == "/v1/responses" and e.method == "POST"]
    assert model_calls and all(e.request_headers["authorization"] == f"Bearer {KEY}" for e in model_calls)

    # When everything the runs left behind is gathered
    stepfunctions = local_stack.client("stepfunctions")
    histories = [
        stepfunctions.get_execution_history(executionArn=run["execution"]["arn"], maxResults=1000)["events"]
        for run in (completed, failed)
    ]
    captured = capfd.readouterr()
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    places = {
        # each record as a handler would write it (tracebacks with their chained causes), and its extras
        "log records": "\n".join(
            f"{formatter.format(record)} {record.__dict__}" for record in caplog.records
        ),
        "stdout": captured.out,
        "stderr": captured.err,
        "execution histories": json.dumps(histories, default=str),
        "runs": json.dumps([alice.get(f"/v1/runs/{run['id']}").json() for run in (completed, failed)]),
        "messages": alice.get(f"/v1/threads/{thread['id']}/messages").text,
        "function environment": json.dumps(local_stack._environment()),
        "process environment": json.dumps(dict(os.environ)),
    }

    # Then the key is in none of them
    assert places["log records"] and places["execution histories"]  # there was something to search
    for place, text in places.items():
        assert KEY not in text, f"the key leaked into the {place}"
