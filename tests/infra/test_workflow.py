"""The state machine deploys run.asl.json itself, wired to the right step functions."""

from __future__ import annotations

import json
import re

import pytest
from threadrunner.tools.registry import TOOLS

from infra.constants import TOOL_FUNCTIONS, WORKFLOW_STEPS, FunctionName
from infra.workflows import run_workflow_definition
from tests.infra.synth import (
    CDK_CONTEXT,
    ENVIRONMENTS,
    Synthesized,
    actions,
    render,
    resources_of,
    synthesize,
)

# Definition substitutions, as CloudFormation applies them (``$.field`` JSONPath is left alone).
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def substitute(text: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_definition_is_the_asl_file_for_its_completion_with_each_step_functions_arn(
    environment: str,
) -> None:
    # Given the workflow for the environment's completion mode and, independently, which Lambda is which
    # step (by deployed name)
    synthesized = synthesize(environment)
    completion = CDK_CONTEXT["environments"][environment]["completion"]
    asl = run_workflow_definition(completion)
    step_arns = {
        name.asl_placeholder: f"<{synthesized.function(name)[0]}.Arn>"
        for name in WORKFLOW_STEPS
        if f"${{{name.asl_placeholder}}}" in asl
    }
    expected = json.loads(substitute(asl, step_arns))

    # When the template's definition is rendered with its own substitutions
    _, machine = synthesized.only("AWS::StepFunctions::StateMachine")
    properties = machine["Properties"]
    substitutions = {
        key: render(value) for key, value in properties.get("DefinitionSubstitutions", {}).items()
    }
    deployed = substitute(render(properties["DefinitionString"]), substitutions)

    # Then it is the same workflow, and every placeholder in the file was mapped
    assert json.loads(deployed) == expected
    assert set(PLACEHOLDER.findall(asl)) == set(substitutions) == set(step_arns)
    # and "Wait for model" is what the mode wants: a Wait state, or a callback task on Await model
    wait = json.loads(deployed)["States"]["Wait for model"]
    if completion == "webhook":
        assert wait["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
        assert (
            wait["Parameters"]["FunctionName"] == f"<{synthesized.function(FunctionName.await_model)[0]}.Arn>"
        )
        # a webhook that never comes: Check run polls (a timeout, or Await model failing, never ends the run)
        assert wait["TimeoutSecondsPath"] == "$.settings.webhook_fallback_seconds"
        assert [(c["ErrorEquals"], c["Next"]) for c in wait["Catch"]] == [(["States.ALL"], "Check run")]
    else:
        assert wait["Type"] == "Wait" and wait["SecondsPath"] == "$.run.wait_seconds"


def test_a_standard_traced_state_machine_named_after_the_environment(dev: Synthesized) -> None:
    _, machine = dev.only("AWS::StepFunctions::StateMachine")

    assert machine["Properties"]["StateMachineName"] == "threadrunner-dev-run"
    assert machine["Properties"]["StateMachineType"] == "STANDARD"
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_environment_logs_every_event_and_never_execution_data(environment: str) -> None:
    # Given any environment's state machine
    synthesized = synthesize(environment)
    _, machine = synthesized.only("AWS::StepFunctions::StateMachine")
    logging = machine["Properties"]["LoggingConfiguration"]

    # Then it logs every event, never the states' inputs and outputs (no prompt or answer ends up in logs)
    assert (logging["Level"], logging["IncludeExecutionData"]) == ("ALL", False)
    group = render(logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"])
    log_group = synthesized.template["Resources"][group.strip("<>").removesuffix(".Arn")]
    assert log_group["Properties"]["LogGroupName"] == f"/aws/vendedlogs/states/threadrunner-{environment}-run"
    retention = synthesized.stack.node.try_get_context("environments")[environment]["log_retention_days"]
    assert log_group["Properties"]["RetentionInDays"] == retention


def test_the_state_machine_may_invoke_exactly_the_seven_step_functions(dev: Synthesized) -> None:
    _, machine = dev.only("AWS::StepFunctions::StateMachine")
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]

    invoking = [
        s for s in dev.statements_of_role(role_id) if any(a.startswith("lambda:") for a in actions(s))
    ]

    (statement,) = invoking
    assert actions(statement) == ["lambda:InvokeFunction"]
    invoked = {render(resource) for resource in resources_of(statement)}
    assert invoked == {f"<{dev.function(name)[0]}.Arn>" for name in (*WORKFLOW_STEPS, *TOOL_FUNCTIONS)}
    assert f"<{dev.function(FunctionName.api)[0]}.Arn>" not in invoked


def test_every_tool_has_its_own_lambda_and_check_run_routes_calls_to_it(dev: Synthesized) -> None:
    # Given the tool registry, every tool is deployed as its own Lambda
    assert {name.tool for name in TOOL_FUNCTIONS} == set(TOOLS)
    _, check_run = dev.function(FunctionName.check_run)
    routes = render(check_run["Properties"]["Environment"]["Variables"]["THREADRUNNER_TOOL_FUNCTIONS"])
    # Then Check run knows each tool's ARN (the state machine may invoke them: see the test above)
    for name in TOOL_FUNCTIONS:
        logical_id, _ = dev.function(name)
        assert f'"{name.tool}":"<{logical_id}.Arn>"' in routes.replace(" ", "")
