"""How a tool declares itself: ``@tool(...)`` on a function in a module of ``threadrunner.tools.catalog``.

The declaration is all there is to adding a tool: the registry discovers it, and from the registry come
the tool's own Lambda (infra), its least-privilege grants (from ``capabilities``), Check run's routing and
the local stack's functions. A tool is ``fn(arguments, context) -> BaseModel``: a pydantic argument model
the model sees as the schema, and a pydantic output the model gets as JSON.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel

from threadrunner.engines.base import ToolSpec
from threadrunner.tools.context import ToolContext

__all__ = ["Capability", "Tool", "ToolDeclarationError", "is_tool_name", "tool"]

# Tool names become function names (the model's), Lambda names and Python identifiers.
_TOOL_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")
TOOL_FUNCTION_PREFIX = "tool_"  # a tool's own Lambda is the function ``tool_<name>``
_MARK = "__threadrunner_tool__"


class Capability(StrEnum):
    """What AWS access a tool needs beyond its ledger entry, by name; infra turns each into exact grants
    (infra/constructs/workflow.py, ``CAPABILITY_GRANTS``). A tool that declares none gets nothing more."""

    # The SQL database the environment names: the bundled SQLite sample (in the layer: nothing to grant),
    # or the PostgreSQL URL in its ``database_secret_name`` secret (read that secret, and learn its name).
    database = "database"


class ToolDeclarationError(ValueError):
    """A tool module declares something the registry cannot serve (bad name, no argument model, ...)."""


def is_tool_name(name: str) -> bool:
    return bool(_TOOL_NAME.fullmatch(name)) and not keyword.iskeyword(name)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    arguments: type[BaseModel]
    run: Callable[[Any, ToolContext], BaseModel]
    capabilities: tuple[Capability, ...] = ()
    # Arguments that work against the sample setup (`threadrunner tools call NAME` and its test use them).
    example: Mapping[str, Any] = field(default_factory=dict)
    module: str = ""  # where it is declared

    def spec(self) -> ToolSpec:
        return ToolSpec(
            name=self.name, description=self.description, parameters=self.arguments.model_json_schema()
        )

    @property
    def function_id(self) -> str:
        """The tool's own Lambda, ``tool_<name>`` (functions/run_tool's code, deployed once per tool)."""
        return f"{TOOL_FUNCTION_PREFIX}{self.name}"


FunctionT = TypeVar("FunctionT", bound=Callable[..., BaseModel])


def tool(
    *,
    description: str,
    capabilities: Iterable[Capability | str] = (),
    example: Mapping[str, Any] | None = None,
    name: str | None = None,
    arguments: type[BaseModel] | None = None,
) -> Callable[[FunctionT], FunctionT]:
    """Declare ``fn(arguments: SomeModel, context: ToolContext) -> SomeOutput`` a tool. The name defaults to
    the function's, the argument model to its first parameter's annotation. The function stays callable."""

    def declare(function: FunctionT) -> FunctionT:
        tool_name = name or function.__name__
        if not is_tool_name(tool_name):
            raise ToolDeclarationError(
                f"tool name {tool_name!r} in {function.__module__}: use lower_snake_case, at most 48 characters"
            )
        if not description.strip():
            raise ToolDeclarationError(f"tool {tool_name} has no description: the model chooses tools by it")
        try:
            declared = Tool(
                name=tool_name,
                description=description.strip(),
                arguments=arguments or _argument_model(function),
                run=function,
                capabilities=tuple(Capability(capability) for capability in capabilities),
                example=dict(example or {}),
                module=function.__module__,
            )
        except ValueError as error:  # an unknown capability
            raise ToolDeclarationError(f"tool {tool_name}: {error}") from None
        setattr(function, _MARK, declared)
        return function

    return declare


def declared_tool(value: object) -> Tool | None:
    """The declaration ``@tool`` attached to ``value``, if any."""
    found = getattr(value, _MARK, None)
    return found if isinstance(found, Tool) else None


def _argument_model(function: Callable[..., Any]) -> type[BaseModel]:
    hints = get_type_hints(function)
    parameters = [hint for key, hint in hints.items() if key != "return"]
    if parameters and isinstance(parameters[0], type) and issubclass(parameters[0], BaseModel):
        return parameters[0]
    raise ToolDeclarationError(
        f"{function.__module__}.{function.__name__}: annotate the first parameter with a pydantic model "
        "(the tool's arguments), or pass arguments= to @tool"
    )
