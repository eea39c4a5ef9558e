"""The registry: specs from the assistant config, and every tool problem turned into an error output."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import BaseModel, ConfigDict
from threadrunner.assistant_definitions import AssistantConfig, DatabaseAccess
from threadrunner.settings import ToolSettings
from threadrunner.tools import registry
from threadrunner.tools.errors import ToolTimeout
from threadrunner.tools.registry import (
    Tool,
    ToolContext,
    ToolResult,
    call_tool,
    call_tool_locally,
    tool_specs,
)


class EchoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    times: int = 1


class Echoed(BaseModel):
    text: str


def echo(arguments: EchoArguments, context: ToolContext) -> Echoed:
    return Echoed(text=arguments.text * arguments.times)


def explode(arguments: EchoArguments, context: ToolContext) -> Echoed:
    raise RuntimeError("connection to postgresql://reader:hunter2@db.internal:5432 failed")


def stall(arguments: EchoArguments, context: ToolContext) -> Echoed:
    raise ToolTimeout("the query ran longer than 5 s and was stopped")


@pytest.fixture(autouse=True)
def fake_tools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    tools = dict(registry.TOOLS)
    for name, function in {"echo": echo, "explode": explode, "stall": stall}.items():
        tools[name] = Tool(name, f"{name} for tests", EchoArguments, function)
    monkeypatch.setattr(registry, "TOOLS", tools)
    yield


def context(tools: list[str], max_chars: int = 2_000) -> ToolContext:
    assistant = AssistantConfig(
        name="tester", instructions="test", tools=tools, database=DatabaseAccess(tables=["sales"])
    )
    return ToolContext(assistant=assistant, settings=ToolSettings(tool_output_max_chars=max_chars))


def error_of(result: ToolResult) -> str:
    assert result.is_error
    return str(json.loads(result.output)["error"])


def test_specs_list_only_the_assistants_tools_with_strict_schemas() -> None:
    specs = tool_specs(context(["query_database", "get_table_schema"]).assistant)
    assert [spec.name for spec in specs] == ["query_database", "get_table_schema"]
    for spec in specs:
        assert spec.description
        assert spec.parameters["type"] == "object"
        assert spec.parameters["additionalProperties"] is False
        assert spec.parameters["required"] == list(spec.parameters["properties"])
    assert specs[0].parameters["properties"]["query"]["type"] == "string"


def test_specs_refuse_a_config_naming_an_unknown_tool() -> None:
    with pytest.raises(ValueError, match="unknown tools: send_email"):
        tool_specs(context(["query_database", "send_email"]).assistant)


def test_a_good_call_returns_the_tools_json() -> None:
    result = call_tool("echo", '{"text": "ab", "times": 2}', context(["echo"]))
    assert result == ToolResult(output='{"text":"abab"}', is_error=False, truncated=False)


def test_an_unknown_tool_is_an_error_output() -> None:
    assert "unknown tool 'send_email'" in error_of(call_tool("send_email", "{}", context(["echo"])))


def test_a_tool_the_assistant_may_not_use_is_an_error_output() -> None:
    message = error_of(call_tool("echo", '{"text": "x"}', context(["query_database"])))
    assert message == "the tool echo is not available to this assistant"


@pytest.mark.parametrize("arguments", ['{"text": ', "not json", "[1, 2"])
def test_invalid_json_is_an_error_output(arguments: str) -> None:
    message = error_of(call_tool("echo", arguments, context(["echo"])))
    assert message.startswith("the arguments are not valid JSON")


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ("{}", "text: Field required"),
        ('{"text": "x", "times": "many"}', "times: Input should be a valid integer"),
        ('{"text": "x", "y": 1}', "y: Extra inputs are not permitted"),
    ],
)
def test_invalid_arguments_name_the_field(arguments: str, field: str) -> None:
    message = error_of(call_tool("echo", arguments, context(["echo"])))
    assert message.startswith("invalid arguments for echo:")
    assert field in message


def test_a_crash_inside_the_tool_is_a_short_error_without_details() -> None:
    result = call_tool("explode", '{"text": "x"}', context(["explode"]))
    message = error_of(result)
    assert message == "the tool explode failed unexpectedly; try again, or try a simpler request"
    assert "hunter2" not in result.output and "Traceback" not in result.output


def test_a_timeout_is_an_error_output() -> None:
    assert "ran longer than 5 s" in error_of(call_tool("stall", '{"text": "x"}', context(["stall"])))


def test_long_outputs_are_capped_and_stay_valid_json() -> None:
    arguments = json.dumps({"text": 'a"b\\c' * 100, "times": 10})
    result = call_tool("echo", arguments, context(["echo"], max_chars=300))
    assert result.truncated and not result.is_error
    assert len(result.output) <= 300
    assert json.loads(result.output)["truncated_output"].startswith('{"text":"a\\"b')


def test_call_tool_locally_reports_an_unknown_assistant_as_an_error() -> None:
    assert "unknown assistant" in error_of(call_tool_locally("query_database", "{}", assistant="nobody"))
