"""Timing relationships of the deployed workflow, read from each environment's template and the settings
the functions get from it (never copies of the numbers): a step runs out of time in its own code first,
then in its Lambda, and only then in its workflow task.

- Every Lambda task of the workflow (tools included) outlasts its Lambda: INIT (at most 10 s on Lambda) plus
  the function's timeout fit in the task's ``TimeoutSeconds``. Otherwise the task times out while the
  Lambda still runs (``States.Timeout``), and a retried step can meet its own earlier attempt.
- One upstream call fits in the Lambda of every function that talks to the model: all its attempts, each up
  to the client's timeout, plus every wait between them (engines/retry.py keeps the waits of one call within
  the retry budget). Otherwise a slow upstream kills the Lambda (``Sandbox.Timedout``) instead of failing the
  step with an error the workflow can act on.
- Check run's polling inside one invocation (``check_wait_seconds``) and then one more upstream call fit in
  its Lambda: it stops polling early when the Lambda has less left (threadrunner/workflow/polling.py), but
  the configured bound must leave that room, or every long model call would cut its waiting short.
- A tool's own wall-clock budget (threadrunner.tools.registry) fits in its Lambda: a slow tool gives the
  model an error output instead of killing the Lambda.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any, TypeVar

import pytest
from pydantic_settings import BaseSettings
from threadrunner.settings import RunSettings, ToolSettings, UpstreamSettings

from infra.constants import TOOL_FUNCTIONS, FunctionName
from tests.infra.synth import ENVIRONMENTS, Synthesized, render, synthesize

# Lambda's INIT phase may take up to 10 s before the handler runs, outside the function's own timeout.
LAMBDA_INIT_SECONDS = 10
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def deployed_definition(synthesized: Synthesized) -> dict[str, Any]:
    """The state machine as CloudFormation deploys it, function ARNs rendered as ``<LogicalId.Arn>``."""
    _, machine = synthesized.only("AWS::StepFunctions::StateMachine")
    properties = machine["Properties"]
    values = {key: render(value) for key, value in properties.get("DefinitionSubstitutions", {}).items()}
    text = PLACEHOLDER.sub(lambda match: values[match.group(1)], render(properties["DefinitionString"]))
    return dict(json.loads(text))


def lambda_tasks(node: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``lambda:invoke`` task, those inside a Map's item processor too."""
    for name, state in node["States"].items():
        if state.get("Resource") == LAMBDA_INVOKE:
            yield name, state
        if "ItemProcessor" in state:
            yield from lambda_tasks(state["ItemProcessor"])


def invoked_functions(synthesized: Synthesized, task: dict[str, Any]) -> list[dict[str, Any]]:
    """The Lambda(s) a task invokes: the one it names, or (a task routed at run time, Run tool) every
    function Check run routes tool calls to."""
    parameters = task["Parameters"]
    if "FunctionName" in parameters:
        arns = [parameters["FunctionName"]]
    else:
        _, check_run = synthesized.function(FunctionName.check_run)
        routes = render(check_run["Properties"]["Environment"]["Variables"]["THREADRUNNER_TOOL_FUNCTIONS"])
        arns = list(json.loads(routes).values())
    resources = synthesized.template["Resources"]
    return [resources[arn.strip("<>").removesuffix(".Arn")] for arn in arns]


def settings_of(model: type[SettingsT], function: dict[str, Any]) -> SettingsT:
    """``model`` as the function reads it: its environment's plain values over the defaults."""
    variables = function["Properties"]["Environment"]["Variables"]
    with pytest.MonkeyPatch.context() as environment:
        for name in [name for name in os.environ if name.startswith("THREADRUNNER_")]:
            environment.delenv(name)
        for name, value in variables.items():
            if isinstance(value, str):
                environment.setenv(name, value)
        return model()


def longest_upstream_call_seconds(settings: UpstreamSettings) -> float:
    """Every attempt timing out, and every wait between them (all within the retry budget)."""
    return settings.retry_max_attempts * settings.openai_timeout_seconds + settings.retry_budget_seconds


def talks_to_upstream(function: dict[str, Any]) -> bool:
    """Holds the upstream key's secret name: reads the key, so it calls the model's API."""
    return "THREADRUNNER_OPENAI_SECRET_NAME" in function["Properties"]["Environment"]["Variables"]


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def synthesized(request: pytest.FixtureRequest) -> Synthesized:
    return synthesize(request.param)


def test_every_lambda_task_outlasts_its_lambdas_init_and_timeout(synthesized: Synthesized) -> None:
    tasks = list(lambda_tasks(deployed_definition(synthesized)))
    assert {"Start run", "Run tool", "Finish run"} <= {name for name, _ in tasks}
    for name, task in tasks:
        assert "TimeoutSeconds" in task, f"{name} has no TimeoutSeconds"
        functions = invoked_functions(synthesized, task)
        assert functions, name
        for function in functions:
            timeout = function["Properties"]["Timeout"]
            assert LAMBDA_INIT_SECONDS + timeout < task["TimeoutSeconds"], (name, timeout)


def test_the_tool_tasks_reach_every_tool_lambda(synthesized: Synthesized) -> None:
    (run_tool,) = [
        task for name, task in lambda_tasks(deployed_definition(synthesized)) if name == "Run tool"
    ]
    invoked = invoked_functions(synthesized, run_tool)
    names = {function["Properties"]["FunctionName"] for function in invoked}
    assert names == {name.function_name(synthesized.environment) for name in TOOL_FUNCTIONS}


def test_one_upstream_call_with_all_its_retries_fits_in_every_lambda_that_makes_it(
    synthesized: Synthesized,
) -> None:
    callers = {
        name: function
        for name in FunctionName
        if talks_to_upstream(function := synthesized.function(name)[1])
    }
    # Every workflow step that talks to the model is among them (the test would prove nothing otherwise)
    assert {FunctionName.start_run, FunctionName.check_run, FunctionName.submit_tool_outputs} <= set(callers)
    for name, function in callers.items():
        settings = settings_of(UpstreamSettings, function)
        longest = longest_upstream_call_seconds(settings)
        assert longest < function["Properties"]["Timeout"], (name, longest)


def test_a_tools_own_budget_ends_before_its_lambda(synthesized: Synthesized) -> None:
    for name in TOOL_FUNCTIONS:
        _, function = synthesized.function(name)
        settings = settings_of(ToolSettings, function)
        assert settings.sql_timeout_seconds <= settings.tool_timeout_seconds
        assert settings.tool_timeout_seconds < function["Properties"]["Timeout"], name


def test_check_runs_polling_inside_one_invocation_and_one_more_call_fit_in_its_lambda(
    synthesized: Synthesized,
) -> None:
    _, check_run = synthesized.function(FunctionName.check_run)
    bound = settings_of(RunSettings, check_run).check_wait_seconds
    assert bound > 0  # the test would prove nothing otherwise
    longest = longest_upstream_call_seconds(settings_of(UpstreamSettings, check_run))
    assert bound + longest < check_run["Properties"]["Timeout"], (bound, longest)
