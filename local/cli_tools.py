"""``threadrunner tools`` (list and call the registered tools) and ``threadrunner new tool NAME``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

REPO_ROOT = Path(__file__).resolve().parents[1]
CATALOG_DIR = Path("layers/threadrunner/python/threadrunner/tools/catalog")
TOOL_TESTS_DIR = Path("tests/unit/tools")

tools_app = typer.Typer(no_args_is_help=True, help="List the registered tools, or run one directly.")
new_app = typer.Typer(no_args_is_help=True, help="Start something new from a working template.")


def deployed_function_name(function_id: str, environment: str = "<env>") -> str:
    """The Lambda a tool runs in, as infra names it (infra.constants.ToolFunction.function_name)."""
    return f"threadrunner-{environment}-{function_id.replace('_', '-')}"


@tools_app.command("list")
def tools_list(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (name, schema, capabilities, ...).")
    ] = False,
) -> None:
    """Show each registered tool: its description, argument schema, capabilities and where it runs."""
    from threadrunner.tools.registry import registered_tools

    listed = [
        {
            "name": tool.name,
            "description": tool.description,
            "schema": tool.arguments.model_json_schema(),
            "capabilities": [str(capability) for capability in tool.capabilities],
            "example": dict(tool.example),
            "module": tool.module,
            "lambda": deployed_function_name(tool.function_id),
            "local_function": f"threadrunner-local-{tool.function_id}",
        }
        for tool in registered_tools()
    ]
    if as_json:
        typer.echo(json.dumps(listed, indent=2))
        return
    for entry in listed:
        typer.echo(f"{entry['name']}  ({entry['module']})")
        typer.echo(f"  {entry['description']}")
        typer.echo(f"  capabilities: {', '.join(entry['capabilities']) or 'none'}")
        typer.echo(f"  runs in: Lambda {entry['lambda']} (locally {entry['local_function']})")
        typer.echo(f"  example: threadrunner tools call {entry['name']} '{json.dumps(entry['example'])}'")
        schema = json.dumps(entry["schema"], indent=2).replace("\n", "\n    ")
        typer.echo(f"  schema:\n    {schema}\n")


@tools_app.command("call")
def tools_call(
    name: Annotated[str, typer.Argument(help="Tool name, e.g. query_database.")],
    arguments: Annotated[str, typer.Argument(help="The arguments as JSON.")] = "{}",
    assistant: Annotated[
        str | None,
        typer.Option(help="Whose tool permissions apply (default: the data-analyst, with the tool added)."),
    ] = None,
) -> None:
    """Run one tool locally and print its JSON output (errors included)."""
    from threadrunner.tools.registry import call_tool_locally

    result = call_tool_locally(name, arguments, assistant=assistant)
    typer.echo(json.dumps(json.loads(result.output), indent=2))
    raise typer.Exit(1 if result.is_error else 0)


@new_app.command("tool")
def new_tool(
    name: Annotated[str, typer.Argument(help="The tool's name, lower_snake_case (the model sees it).")],
    root: Annotated[Path, typer.Option(help="The repository to write into.", hidden=True)] = REPO_ROOT,
) -> None:
    """Write a working tool module (catalog/NAME.py) and its passing unit test; edit both from there."""
    from threadrunner.tools.declaration import is_tool_name
    from threadrunner.tools.registry import TOOLS

    if not is_tool_name(name):
        typer.echo(f"{name!r} is not a tool name: use lower_snake_case, a letter first, at most 48", err=True)
        raise typer.Exit(2)
    module, test = root / CATALOG_DIR / f"{name}.py", root / TOOL_TESTS_DIR / f"test_{name}.py"
    taken = [str(path) for path in (module, test) if path.exists()]
    if name in TOOLS or taken:
        where = TOOLS[name].module if name in TOOLS else ", ".join(taken)
        typer.echo(f"a tool named {name} exists already ({where})", err=True)
        raise typer.Exit(1)
    module.parent.mkdir(parents=True, exist_ok=True)
    test.parent.mkdir(parents=True, exist_ok=True)
    pascal = "".join(part.title() for part in name.split("_"))
    module.write_text(TOOL_TEMPLATE.format(name=name, pascal=pascal))
    test.write_text(TEST_TEMPLATE.format(name=name, pascal=pascal))
    typer.echo(f"wrote {module}\nwrote {test}")
    typer.echo(
        f"Next: edit both, list {name} under `tools:` in an assistant's YAML, then "
        f'`threadrunner tools call {name} \'{{"text": "hello"}}\'`. Its Lambda comes with `make synth`.'
    )


TOOL_TEMPLATE = '''"""{name}: what it does, for whoever reads the code (the model reads the description below)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from threadrunner.tools.context import ToolContext
from threadrunner.tools.declaration import tool
from threadrunner.tools.errors import ToolError

DESCRIPTION = (
    "Say what the tool does and what it returns, for the model: it chooses tools by this text. "
    "Today: echoes the text back, upper-cased."
)


class {pascal}Arguments(BaseModel):
    # Strict: unknown arguments are refused, and every field is required (the model's schema is strict).
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=1_000, description="The text to work on.")


class {pascal}Result(BaseModel):
    text: str


# capabilities: what AWS access it needs beyond its ledger entry, e.g. [Capability.database] for the SQL
# database (threadrunner.tools.declaration.Capability); none means its Lambda gets nothing more.
@tool(description=DESCRIPTION, capabilities=[], example={{"text": "hello"}})
def {name}(arguments: {pascal}Arguments, context: ToolContext) -> {pascal}Result:
    if arguments.text.strip() == "":
        raise ToolError("the text is blank")  # the model gets {{"error": "..."}} and the run goes on
    return {pascal}Result(text=arguments.text.upper())
'''

TEST_TEMPLATE = '''"""{name}: registered with a strict schema, and answers the model as JSON (errors included)."""

from __future__ import annotations

import json

from threadrunner.tools.catalog.{name} import {pascal}Arguments, {name}
from threadrunner.tools.registry import TOOLS, call_tool, standalone_context


def test_{name}_is_registered_with_a_strict_schema() -> None:
    schema = TOOLS["{name}"].spec().parameters
    assert TOOLS["{name}"].description
    assert schema["additionalProperties"] is False
    assert schema["required"] == list(schema["properties"])


def test_{name}_answers() -> None:
    result = {name}({pascal}Arguments(text="hello"), standalone_context("{name}"))
    assert result.text == "HELLO"


def test_the_model_gets_its_output_or_an_error_as_json() -> None:
    context = standalone_context("{name}")
    example = json.dumps(dict(TOOLS["{name}"].example))
    answered = call_tool("{name}", example, context)
    refused = call_tool("{name}", json.dumps({{"text": "   "}}), context)
    assert not answered.is_error and json.loads(answered.output)["text"]
    assert refused.is_error and "blank" in json.loads(refused.output)["error"]
'''
