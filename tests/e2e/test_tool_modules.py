"""A tool written as one module runs in a run on the local stack: its own function, routed by Check run."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run
from tests.support.tool_modules import FIXTURE_TOOL, register_fixture_tool

ASSISTANTS = Path(__file__).resolve().parents[2] / "assistants"


def test_a_tool_module_is_called_in_a_run_and_its_output_reaches_the_runs_tool_calls(
    alice: httpx.Client,
    upstream: EmulatorServer,
    local_stack: LocalStack,
    configure: Callable[..., None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a tool written as one module, and the data analyst listing it (nothing else edited)
    register_fixture_tool(tmp_path, monkeypatch)
    assistants = tmp_path / "assistants"
    shutil.copytree(ASSISTANTS, assistants)
    definition = assistants / "data-analyst.yaml"
    definition.write_text(
        definition.read_text().replace("  - query_database\n", f"  - query_database\n  - {FIXTURE_TOOL}\n")
    )
    # Check run's routes as the stack derives them from the registry at start
    configure(
        THREADRUNNER_ASSISTANTS_DIR=str(assistants),
        THREADRUNNER_TOOL_FUNCTIONS=json.dumps(local_stack.lambdas.tool_functions()),
    )
    assert FIXTURE_TOOL in local_stack.lambdas.tool_functions()
    # and a model that asks for it
    upstream.script(Plan.tool_calls([(FIXTURE_TOOL, {"sides": 12})]), Plan.message("It came up 12."))
    thread = new_thread(alice, "dice")

    # When the run goes through
    run = wait_for_run(
        alice, alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "roll"}).json()["id"]
    )

    # Then the tool ran in its own function and its output reached the run's tool calls
    assert run["status"] == "completed", run
    (call,) = run["tool_calls"]
    assert call["name"] == FIXTURE_TOOL
    assert json.loads(call["output"]) == {"sides": 12, "value": 12}
