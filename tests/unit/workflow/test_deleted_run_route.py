"""The way out of run.asl.json for a run deleted while it runs: from whichever state its steps find it gone,
what they answer (threadrunner.workflow.deleted_runs) leads to Finish run, and Finish run's answer to a
Succeed state, with no Fail state and no error on the way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from threadrunner.models.workflow import FinishRunInput, PollSettings, RunProgress, RunToolInput, StepInput
from threadrunner.workflow.deleted_runs import (
    RUN_DELETED,
    finish_of_deleted,
    progress_of_deleted,
    tool_output_of_deleted,
)

ASL = Path(__file__).resolve().parents[3] / "infra" / "workflows" / "run.asl.json"
STATES: dict[str, Any] = json.loads(ASL.read_text())["States"]
STEP = StepInput(
    run_id="run_1",
    settings=PollSettings(first_wait_seconds=2, max_wait_seconds=20, max_polls=10),
    run=RunProgress(status="requires_action", poll_count=3),
)


def _matches(rule: dict[str, Any], state: dict[str, Any]) -> bool:
    if "Or" in rule:
        return any(_matches(one, state) for one in rule["Or"])
    value: Any = state
    for part in rule["Variable"].removeprefix("$.").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if "StringEquals" in rule:
        return bool(value == rule["StringEquals"])
    raise AssertionError(f"a rule this test does not read: {rule}")


def _choose(choice: dict[str, Any], state: dict[str, Any]) -> str:
    return next((rule["Next"] for rule in choice["Choices"] if _matches(rule, state)), choice["Default"])


def _path_to_finish_run(start: str) -> list[str]:
    """The states a deleted run's execution visits from ``start`` to Finish run: every task answers as a
    step does for a deleted run (ResultPath ``$.run``), Waits and Choices go where the state sends them."""
    state = {"run": progress_of_deleted(STEP).model_dump(mode="json")}
    visited = [start]
    while visited[-1] != "Finish run":
        assert len(visited) < 10, f"no way to Finish run: {visited}"
        current = STATES[visited[-1]]
        assert current["Type"] in ("Task", "Map", "Wait", "Choice"), visited
        visited.append(_choose(current, state) if current["Type"] == "Choice" else current["Next"])
    return visited


@pytest.mark.parametrize(
    "start", ["Start run", "Check run", "Run tools", "Submit tool outputs", "Collect outputs", "Cancel run"]
)
def test_a_step_that_finds_its_run_deleted_leads_to_finish_run(start: str) -> None:
    path = _path_to_finish_run(start)
    # at most one more Check run on the way, which answers the same
    assert path.count("Check run") <= 1 + (start == "Check run"), path


def test_finish_run_of_a_deleted_run_ends_the_execution_in_a_succeed_state() -> None:
    finish = FinishRunInput(run_id="run_1", run=RunProgress(status="cancelled"))
    outcome = finish_of_deleted(finish)
    assert outcome.status == RUN_DELETED
    after = _choose(STATES[STATES["Finish run"]["Next"]], {"outcome": outcome.model_dump(mode="json")})
    assert STATES[after]["Type"] == "Succeed", after
    # and a run that really did not complete still fails the execution
    failed = _choose(STATES["Did the run complete?"], {"outcome": {"status": "failed"}})
    assert STATES[failed]["Type"] == "Fail"


def test_a_deleted_runs_progress_waits_nothing_and_a_tool_call_gets_an_error_output() -> None:
    progress = progress_of_deleted(STEP)
    assert (progress.wait_seconds, progress.poll_count, progress.tool_calls) == (0, 3, [])
    output = tool_output_of_deleted(RunToolInput(run_id="run_1", call_id="c1", name="get_table_schema"))
    assert (output.call_id, output.is_error) == ("c1", True)
