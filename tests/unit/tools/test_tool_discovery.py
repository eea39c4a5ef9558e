"""A tool is one module: the registry finds it by discovery, and refuses declarations it cannot serve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel
from threadrunner.tools import registry
from threadrunner.tools.declaration import Capability, ToolDeclarationError, tool
from threadrunner.tools.tool_lambda import ToolFunctionSettings, ToolNotConfigured, tool_lambda_handler

from tests.support.tool_modules import FIXTURE_MODULE, FIXTURE_TOOL, register_fixture_tool


def test_the_library_catalog_holds_todays_tools_with_their_capabilities() -> None:
    assert registry.tool_names() == ["get_table_schema", "query_database"]
    for found in registry.registered_tools():
        assert found.capabilities == (Capability.database,)
        assert found.module == f"threadrunner.tools.catalog.{found.name}"
        assert found.example, f"{found.name} has no example for `threadrunner tools call`"


def test_a_module_in_a_package_of_its_own_is_registered_and_callable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a tool written as one module, nowhere else named
    package = register_fixture_tool(tmp_path, monkeypatch)
    # Then the registry has it, with its schema, and calls it like any other tool
    found = registry.TOOLS[FIXTURE_TOOL]
    assert found.module == f"{package}.{FIXTURE_TOOL}" and found.capabilities == ()
    assert found.spec().parameters["required"] == ["sides"]
    result = registry.call_tool(FIXTURE_TOOL, '{"sides": 20}', registry.standalone_context(FIXTURE_TOOL))
    assert json.loads(result.output) == {"sides": 20, "value": 20}
    assert "get_table_schema" in registry.TOOLS  # the library's tools stay


def test_two_tools_with_one_name_stop_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = register_fixture_tool(tmp_path, monkeypatch)
    clash = FIXTURE_MODULE.replace("def roll_dice", "def query_database")
    (tmp_path / "tool_packages" / package / "clash.py").write_text(clash)
    with pytest.raises(ToolDeclarationError, match="two tools are named query_database"):
        registry.discover([*registry.CATALOGS, package])


class Arguments(BaseModel):
    text: str


def test_declarations_the_registry_cannot_serve_are_refused() -> None:
    def no_model(arguments: str, context: object) -> Arguments:
        return Arguments(text=arguments)

    with pytest.raises(ToolDeclarationError, match="lower_snake_case"):
        tool(description="x", name="Send-Email")(no_model)
    with pytest.raises(ToolDeclarationError, match="pydantic model"):
        tool(description="x")(no_model)
    with pytest.raises(ToolDeclarationError, match="no description"):
        tool(description=" ", arguments=Arguments)(no_model)
    with pytest.raises(ToolDeclarationError, match="read_minds"):
        tool(description="x", arguments=Arguments, capabilities=["read_minds"])(no_model)


def test_a_tool_lambda_runs_the_tool_it_is_configured_for_and_nothing_else() -> None:
    assert callable(tool_lambda_handler(ToolFunctionSettings(tool_name="query_database")))
    with pytest.raises(ToolNotConfigured, match="not a registered tool"):
        tool_lambda_handler(ToolFunctionSettings(tool_name="send_email"))
    unconfigured = tool_lambda_handler(ToolFunctionSettings(tool_name=None))
    with pytest.raises(ToolNotConfigured, match="THREADRUNNER_TOOL_NAME is not set"):
        unconfigured({}, None)
