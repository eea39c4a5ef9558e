"""The workflow file as the local stack loads it: the same substitution CDK makes, to local function ARNs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.workflows import COMPLETIONS, Completion, run_workflow_definition
from local.lambdas import LambdaDispatch
from local.workflow_definition import folder_for_placeholder, render_definition

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("placeholder", "folder"),
    [("StartRun", "start_run"), ("SubmitToolOutputs", "submit_tool_outputs"), ("Api", "api")],
)
def test_placeholders_name_function_folders(placeholder: str, folder: str) -> None:
    assert folder_for_placeholder(placeholder) == folder


@pytest.mark.parametrize("completion", COMPLETIONS)
def test_every_task_of_the_real_workflow_points_at_an_existing_function(completion: Completion) -> None:
    dispatch = LambdaDispatch(ROOT / "functions", region="us-east-1", account="123456789012")

    definition = json.loads(render_definition(run_workflow_definition(completion), dispatch.function_arn))

    tasks = [
        state
        for state in _states(definition)
        if str(state.get("Resource", "")).startswith("arn:aws:states:::lambda:invoke")
    ]
    names = [task["Parameters"]["FunctionName"] for task in tasks if "FunctionName" in task["Parameters"]]
    assert names, "the workflow has no Lambda tasks"
    # Run tool is the one task routed at run time: Check run hands it the tool's own Lambda
    routed = [
        task["Parameters"]["FunctionName.$"] for task in tasks if "FunctionName.$" in task["Parameters"]
    ]
    assert routed == ["$.function"]
    for name in names:
        assert name.startswith("arn:aws:lambda:us-east-1:123456789012:function:threadrunner-local-")
        assert (ROOT / "functions" / dispatch.folder_for(name) / "handler.py").is_file(), name


def test_an_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"\$\{QueueUrl\}"):
        render_definition('{"a": "${StartRunFunctionArn}", "b": "${QueueUrl}"}', lambda folder: folder)


def _states(node: dict) -> list[dict]:  # type: ignore[type-arg]
    found = []
    for state in node.get("States", {}).values():
        found.append(state)
        if "ItemProcessor" in state:
            found.extend(_states(state["ItemProcessor"]))
    return found
