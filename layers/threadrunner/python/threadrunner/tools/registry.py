"""The tool registry: every ``@tool`` in a module of ``threadrunner.tools.catalog``, found by discovery.

A tool is one module (tools/declaration.py says how to declare one); nothing else lists tools. Infra,
Check run's routing, the local stack and the CLI all read ``TOOLS``.

``call_tool`` never raises for a tool problem. Unknown or forbidden tools, bad JSON, invalid arguments,
refusals, timeouts and crashes all come back as ``{"error": "..."}`` outputs, so the model can read them
and the run goes on. Outputs stay valid JSON within ``tool_output_max_chars``.
"""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from pydantic import BaseModel, ValidationError

from threadrunner.assistant_definitions import AssistantConfig, load_assistant
from threadrunner.engines.base import ToolSpec
from threadrunner.errors import InvalidRequestError
from threadrunner.models.deferred_model import DeferredModel
from threadrunner.settings import ToolSettings, tool_settings
from threadrunner.tools.context import ToolContext
from threadrunner.tools.declaration import Capability, Tool, ToolDeclarationError, declared_tool
from threadrunner.tools.errors import ToolError, ToolTimeout

__all__ = [
    "CATALOGS",
    "TOOLS",
    "Capability",
    "Tool",
    "ToolContext",
    "ToolResult",
    "call_tool",
    "call_tool_locally",
    "discover",
    "error_result",
    "refusal",
    "registered_tools",
    "standalone_context",
    "tool_names",
    "tool_specs",
]

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500
CATALOGS = ("threadrunner.tools.catalog",)


def discover(packages: Iterable[str] = CATALOGS) -> dict[str, Tool]:
    """Import every module of ``packages`` and collect the tools they declare (sorted by name). Two tools
    with one name, or a module that fails to import, stop it: a tool never goes missing without a word."""
    found: dict[str, Tool] = {}
    for package_name in packages:
        package = importlib.import_module(package_name)
        for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name):
            if module_info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package_name}.{module_info.name}")
            for value in vars(module).values():
                declared = declared_tool(value)
                if declared is None or declared.module != module.__name__:
                    continue  # not a tool, or one imported from elsewhere
                if declared.name in found and found[declared.name] != declared:
                    raise ToolDeclarationError(
                        f"two tools are named {declared.name}: in {found[declared.name].module} "
                        f"and {declared.module}"
                    )
                found[declared.name] = declared
    return dict(sorted(found.items()))


TOOLS: dict[str, Tool] = discover()


def registered_tools() -> list[Tool]:
    """Every registered tool, by name."""
    return [TOOLS[name] for name in sorted(TOOLS)]


def tool_names() -> list[str]:
    """The names assistants may list (assistants/<name>.yaml, ``tools``)."""
    return sorted(TOOLS)


class ToolResult(DeferredModel):
    output: str  # JSON text: the tool's result, or {"error": "..."}
    is_error: bool = False
    truncated: bool = False  # the output does not hold everything the tool produced
    # The tool's whole output when ``output`` had to be cut to tool_output_max_chars (kept in S3 by the step).
    full_output: str | None = None


def tool_specs(assistant: AssistantConfig) -> list[ToolSpec]:
    """The tools the assistant's config lists, as the model sees them (a client tool as its YAML declares it)."""
    client = assistant.client_tools
    unknown = [name for name in assistant.tools if name not in TOOLS and name not in client]
    if unknown:
        raise ValueError(f"assistant {assistant.name} lists unknown tools: {', '.join(unknown)}")
    return [
        ToolSpec(name=name, description=client[name].description, parameters=client[name].parameters)
        if name in client
        else TOOLS[name].spec()
        for name in assistant.tools
    ]


def call_tool(name: str, arguments: str, context: ToolContext) -> ToolResult:
    """Run one tool call for the model; every failure becomes an error output, never an exception."""
    try:
        tool = _tool_for(name, context.assistant)
        result = _run_within_budget(tool, _parse(tool, arguments), context)
    except ToolError as error:
        return error_result(str(error))
    except Exception:
        # The details (which may name hosts or paths) go to the logs, not to the model.
        logger.exception("tool %s failed", name)
        return error_result(f"the tool {name} failed unexpectedly; try again, or try a simpler request")
    return _capped(
        result.model_dump_json(), context.settings.tool_output_max_chars, getattr(result, "truncated", False)
    )


def refusal(name: str, assistant: AssistantConfig) -> ToolResult | None:
    """The error output for a call that must not run at all (unknown tool, or not this assistant's)."""
    try:
        _tool_for(name, assistant)
    except ToolError as error:
        return error_result(str(error))
    return None


def call_tool_locally(name: str, arguments: str, *, assistant: str | None = None) -> ToolResult:
    """For the CLI: the call as ``assistant`` (from ``assistants_dir``) would make it. Without one, as the
    data-analyst with the tool added when it does not list it, so every registered tool can be tried."""
    settings = tool_settings()
    try:
        config = load_assistant(settings.assistants_dir, assistant or DEFAULT_CLI_ASSISTANT)
    except InvalidRequestError as error:
        return error_result(str(error))
    if assistant is None and name in TOOLS and name not in config.tools:
        config = config.model_copy(update={"tools": [*config.tools, name]})
    return call_tool(name, arguments, ToolContext(assistant=config, settings=settings))


DEFAULT_CLI_ASSISTANT = "data-analyst"


def standalone_context(*tools: str, settings: ToolSettings | None = None) -> ToolContext:
    """A context for trying ``tools`` on their own (a tool's unit test): an assistant that may use only
    them and no database tables."""
    assistant = AssistantConfig(name="tool-tester", instructions="Try the tools.", tools=list(tools))
    return ToolContext(assistant=assistant, settings=settings or ToolSettings())


def _tool_for(name: str, assistant: AssistantConfig) -> Tool:
    if name not in TOOLS:
        raise ToolError(
            f"unknown tool {name[:64]!r}; available tools: {', '.join(assistant.tools) or 'none'}"
        )
    if name not in assistant.tools:
        raise ToolError(f"the tool {name} is not available to this assistant")
    return TOOLS[name]


def _run_within_budget(tool: Tool, arguments: BaseModel, context: ToolContext) -> BaseModel:
    """A wall-clock budget on top of the database's own: the model gets an error output, not a hung step."""
    budget = context.settings.tool_timeout_seconds
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"tool-{tool.name}")
    try:
        return pool.submit(tool.run, arguments, context).result(timeout=budget)
    except FutureTimeout:
        raise ToolTimeout(f"the tool {tool.name} did not finish within {budget:g} s") from None
    finally:
        pool.shutdown(wait=False)


def _parse(tool: Tool, arguments: str) -> BaseModel:
    try:
        return tool.arguments.model_validate_json(arguments.strip() or "{}")
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        if any(problem["type"] == "json_invalid" for problem in problems):
            raise ToolError(f"the arguments are not valid JSON: {problems[0]['msg']}") from None
        described = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'arguments'}: {problem['msg']}"
            for problem in problems[:5]
        )
        raise ToolError(f"invalid arguments for {tool.name}: {described}") from None


def error_result(message: str) -> ToolResult:
    """An error output for the model."""
    return ToolResult(
        output=json.dumps({"error": message[:MAX_ERROR_CHARS]}, ensure_ascii=False), is_error=True
    )


def _capped(output: str, max_chars: int, truncated: bool) -> ToolResult:
    """The output, or its beginning wrapped in JSON when it is too long (still valid JSON)."""
    if len(output) <= max_chars:
        return ToolResult(output=output, truncated=truncated)
    keep = max_chars
    while True:
        wrapped = json.dumps({"truncated_output": output[:keep]}, ensure_ascii=False)
        if len(wrapped) <= max_chars or keep == 0:
            return ToolResult(output=wrapped, truncated=True, full_output=output)
        keep = max(0, keep - (len(wrapped) - max_chars))
