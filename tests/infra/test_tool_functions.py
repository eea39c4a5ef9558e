"""A tool written as one module gets its own Lambda, its route and only what it declares: nothing to edit."""

from __future__ import annotations

from pathlib import Path

import pytest
from threadrunner.tools.declaration import Capability

from infra.constants import FunctionName, ToolFunction, tool_functions
from infra.constructs.workflow import CAPABILITY_GRANTS
from tests.infra.synth import actions, render, synthesize_with
from tests.support.tool_modules import FIXTURE_TOOL, register_fixture_tool


def test_every_capability_a_tool_may_declare_grants_something() -> None:
    assert set(CAPABILITY_GRANTS) == set(Capability)


def test_a_tool_module_gets_its_own_lambda_with_only_the_ledger_and_its_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a tool written as one module that declares no capability, in an environment with a database
    register_fixture_tool(tmp_path, monkeypatch)
    tools = {tool.tool: tool for tool in tool_functions()}
    assert set(tools) == {"get_table_schema", "query_database", FIXTURE_TOOL}
    synthesized = synthesize_with("staging", database_secret_name="threadrunner/staging/warehouse")

    # When the app is synthesized, the tool has a Lambda of its own running functions/run_tool as itself
    dice = tools[FIXTURE_TOOL]
    logical_id, function = synthesized.function(dice)
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["THREADRUNNER_TOOL_NAME"] == FIXTURE_TOOL
    assert "THREADRUNNER_DATABASE_SECRET_NAME" not in variables
    # Check run routes its calls there
    _, check_run = synthesized.function(FunctionName.check_run)
    routes = render(check_run["Properties"]["Environment"]["Variables"]["THREADRUNNER_TOOL_FUNCTIONS"])
    assert f'"{FIXTURE_TOOL}":"<{logical_id}.Arn>"' in routes.replace(" ", "")

    # Then it holds exactly what every tool holds for its ledger entry, and none of the database's grants
    def granted(name: ToolFunction) -> set[tuple[str, str]]:
        return {
            (action, str(render(resource)))
            for statement in synthesized.role_statements(name)
            for action in actions(statement)
            for resource in (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            if not action.startswith(("logs:", "xray:"))  # its own log group and traces: per function
        }

    query = tools["query_database"]
    database_reads = {grant for grant in granted(query) if grant[0].startswith("secretsmanager:")}
    assert database_reads  # the tool that declares the database reads its secret
    assert granted(dice) == granted(query) - database_reads
