"""The CLI commands on the client, with --json as scripts use them, against the local stack: a thread's runs,
a run's live events and its trace, an upload, the caller's usage; and errors in one line, exit status 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from local.auth import issue_token
from local.cli import app
from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.support.uploads import SALES_CSV

COUNT = {"query": "SELECT COUNT(*) AS n FROM customers"}


@pytest.fixture
def threadrunner(local_stack: LocalStack, upstream: EmulatorServer) -> Any:
    """Runs `threadrunner ARGS --api-url <the stack> --token <dave's>`; returns the result."""
    runner = CliRunner()
    token = issue_token("dave")

    def invoke(*args: str) -> Any:
        return runner.invoke(app, [*args, "--api-url", local_stack.api_url, "--token", token])

    return invoke


def _completed_run(local_stack: LocalStack, upstream: EmulatorServer, purpose: str) -> tuple[str, str]:
    from threadrunner.client import Threadrunner

    upstream.script(Plan.tool_calls([("query_database", COUNT)]), Plan.message("There are 42."))
    with Threadrunner(local_stack.api_url, issue_token("dave")) as client:
        thread = client.threads.get_or_create("data-analyst", purpose)
        run = client.runs.wait(client.runs.create(thread.id, "How many customers?").id, timeout=60)
    assert run.status == "completed"
    return thread.id, run.id


def test_runs_list_watch_and_trace_print_json(
    threadrunner: Any, local_stack: LocalStack, upstream: EmulatorServer
) -> None:
    # Given a completed two-round run
    thread_id, run_id = _completed_run(local_stack, upstream, "cli-runs")
    # When its thread's runs are listed
    listed = threadrunner("runs", "list", thread_id, "--json")
    assert listed.exit_code == 0, listed.output
    assert [run["id"] for run in json.loads(listed.stdout)["runs"]] == [run_id]
    # And its events watched: one JSON event per line, ending with run.completed, exit status 0
    watched = threadrunner("runs", "watch", run_id, "--json")
    assert watched.exit_code == 0, watched.output
    events = [json.loads(line) for line in watched.stdout.splitlines()]
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "run.completed"
    assert "tool_call.completed" in [event["type"] for event in events]
    # And its trace read: the states the execution entered
    traced = threadrunner("runs", "trace", run_id, "--json")
    assert traced.exit_code == 0, traced.output
    trace = json.loads(traced.stdout)
    assert trace["transitions"] == len(trace["states"]) > 0
    assert trace["execution"]["status"] == "SUCCEEDED"
    # And the people's versions show the same
    table = threadrunner("runs", "trace", run_id)
    assert table.exit_code == 0 and trace["states"][0]["name"] in table.stdout
    lines = threadrunner("runs", "watch", run_id)
    assert lines.exit_code == 0 and "query_database" in lines.stdout and "completed" in lines.stdout


def test_files_upload_and_usage_print_json(
    threadrunner: Any, local_stack: LocalStack, upstream: EmulatorServer, tmp_path: Path
) -> None:
    thread_id, _ = _completed_run(local_stack, upstream, "cli-files")
    path = tmp_path / "sales.csv"
    path.write_bytes(SALES_CSV)
    # When a file is uploaded to the thread
    uploaded = threadrunner("files", "upload", str(path), "--thread", thread_id, "--json")
    # Then it is ready
    assert uploaded.exit_code == 0, uploaded.output
    file = json.loads(uploaded.stdout)
    assert (file["status"], file["thread_id"], file["size_bytes"]) == ("ready", thread_id, len(SALES_CSV))
    # And the usage counts the run
    usage = threadrunner("usage", "--json")
    assert usage.exit_code == 0, usage.output
    assert json.loads(usage.stdout)["total"]["runs"] >= 1
    assert "total" in threadrunner("usage").stdout


def test_an_api_error_is_one_line_and_exit_status_1(threadrunner: Any) -> None:
    result = threadrunner("runs", "watch", "run_" + "0" * 26)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "not" in result.stderr.lower()
    assert len(result.stderr.strip().splitlines()) == 1
