"""How Run tools (run.asl.json) meets a tool Lambda that dies: never by failing the run.

The tool's own step counts its attempts and gives up with an error output after MAX_TOOL_ATTEMPTS deaths
(workflow/tool_steps.py), so the task retries a killed Lambda exactly that often: one try fewer and the model
would lose an answer the tool could still give, one more and a tool that keeps killing its Lambda would
fail the run. Anything else ends in the item processor's own Catch, with the call's error output.
"""

from __future__ import annotations

import json
from typing import Any

from threadrunner.models.workflow import RunToolOutput
from threadrunner.workflow.tool_steps import MAX_TOOL_ATTEMPTS

from infra.workflows import RUN_WORKFLOW_FILE

# How Step Functions and Lambda report a function that was killed: the task's own timeout, the function's
# timeout, its process exiting (a crash, a signal), running out of memory, or a failure Lambda cannot name.
KILLED = {"States.Timeout", "Sandbox.Timedout", "Runtime.ExitError", "Runtime.OutOfMemory", "Lambda.Unknown"}


def item_processor() -> dict[str, Any]:
    definition = json.loads(RUN_WORKFLOW_FILE.read_text())
    return dict(definition["States"]["Run tools"]["ItemProcessor"])


def test_a_killed_tool_lambda_is_tried_again_as_often_as_its_step_allows() -> None:
    run_tool = item_processor()["States"]["Run tool"]
    retries = [retry for retry in run_tool["Retry"] if KILLED & set(retry["ErrorEquals"])]
    assert len(retries) == 1 and set(retries[0]["ErrorEquals"]) == KILLED
    assert retries[0]["MaxAttempts"] == MAX_TOOL_ATTEMPTS


def test_any_other_failure_ends_only_its_own_call_with_an_error_output() -> None:
    processor = item_processor()
    (catch,) = processor["States"]["Run tool"]["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"]
    crashed = processor["States"][catch["Next"]]
    # The item ends there, shaped like a tool's own result: the run goes on to Submit tool outputs
    assert crashed["Type"] == "Pass" and crashed["End"] is True
    result = crashed["Parameters"]
    assert {key.removesuffix(".$") for key in result} >= set(RunToolOutput.model_fields)
    assert result["is_error"] is True
