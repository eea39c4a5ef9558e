"""Assistants as code: ``assistants/<name>.yaml`` holds one assistant's instructions, model and tools.

One pydantic model (``AssistantConfig``) reads the YAML everywhere: at ``make synth`` (infra/app.py), at the
local stack's start, in ``threadrunner assistants validate``, and when the API and the workflow steps load an
assistant (``load_assistant``). This module holds the models and ``load_assistant``; reading a file and naming
its problems by file, line and key is threadrunner/assistant_validation.py.

``assistants/assistant.schema.json`` is this model's JSON schema (``threadrunner assistants schema``), for
editors; tests/unit/test_assistant_definitions.py keeps it up to date.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    model_validator,
)

from threadrunner.assistant_knowledge import KnowledgeList
from threadrunner.errors import InvalidRequestError
from threadrunner.hosted_tools import AllowedMcpServer, McpServer, hosted_tool_problems
from threadrunner.models.deferred_model import DeferredModel

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
SUFFIX = ".yaml"
SCHEMA_FILE = "assistant.schema.json"


class _Definition(DeferredModel):
    model_config = ConfigDict(extra="forbid")  # a typo'd key is an error, not a silently ignored setting


class DatabaseAccess(_Definition):
    """Which tables the assistant's SQL tools may read."""

    tables: list[str] = Field(min_length=1, description="The tables the SQL tools may read.")


class ServerTool(_Definition):
    """A tool entry in its long form: a registered tool (its own Lambda), run unattended or, with
    ``approval: required``, once a person approved the call (POST /v1/runs/{id}/approvals)."""

    name: str = Field(description="A registered tool (threadrunner/tools).")
    runs_on: Literal["server"] = Field(default="server", description="Where the tool runs: the server.")
    approval: Literal["none", "required"] = Field(
        default="none", description="Whether a person approves each call before it runs."
    )

    @model_validator(mode="before")
    @classmethod
    def _server_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("description", "parameters"):
                if key in data:
                    raise ValueError(
                        f"{key} is for client tools (runs_on: client); a server tool's comes from its "
                        "registration"
                    )
        return data


class ClientTool(_Definition):
    """A tool the application runs itself: the run waits (requires_action) until it posts the outputs to
    POST /v1/runs/{id}/tool_outputs."""

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$", description="The function name the model calls.")
    runs_on: Literal["client"] = Field(description="Where the tool runs: the application (client).")
    description: str = Field(min_length=1, description="What the tool does, for the model.")
    parameters: dict[str, Any] = Field(description="The tool's arguments: a JSON schema of type object.")

    @model_validator(mode="after")
    def _parameters_are_a_schema(self) -> ClientTool:
        check_json_schema_object(self.parameters)
        return self


_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


def check_json_schema_object(schema: dict[str, Any]) -> None:
    """A client tool's parameters: a JSON schema of type object (what function tools take), its properties
    schemas with known types and its required keys among them. (The Lambda layer has no jsonschema.)"""
    if schema.get("type") != "object":
        raise ValueError("parameters must be a JSON schema of type object")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict) or not all(isinstance(value, dict) for value in properties.values()):
        raise ValueError("parameters.properties must map each argument to its JSON schema")
    for name, prop in properties.items():
        kinds = prop.get("type", "string")
        for kind in kinds if isinstance(kinds, list) else [kinds]:
            if kind not in _JSON_TYPES:
                raise ValueError(f"parameters.properties.{name}.type: {kind!r} is not a JSON schema type")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(key, str) for key in required):
        raise ValueError("parameters.required must be a list of argument names")
    if unknown := [key for key in required if key not in properties]:
        raise ValueError(f"parameters.required names arguments it does not define: {', '.join(unknown)}")


def is_client_entry(entry: Any) -> bool:
    """Whether a tools entry as written declares a client tool (``runs_on: client``)."""
    return isinstance(entry, dict) and entry.get("runs_on") == "client"


def _tool_form(entry: Any) -> str:
    """Which form a tools entry is in: a name, a server tool's mapping or a client tool's (by runs_on)."""
    if isinstance(entry, dict):
        return "ClientTool" if is_client_entry(entry) else "ServerTool"
    if isinstance(entry, ClientTool | ServerTool):
        return type(entry).__name__
    return "str"


def _name_of(entry: str | ServerTool | ClientTool) -> str:
    return entry if isinstance(entry, str) else entry.name


if TYPE_CHECKING:  # once validated, a tool entry is its name (the registry and the engines use names)
    ToolEntry = str
else:
    ToolEntry = Annotated[
        Annotated[str, Tag("str")]
        | Annotated[ServerTool, Tag("ServerTool")]
        | Annotated[ClientTool, Tag("ClientTool")],
        Discriminator(_tool_form),
        AfterValidator(_name_of),
    ]


class AssistantConfig(_Definition):
    """One assistant: assistants/<name>.yaml. Editors check a file against this schema when its first line is
    `# yaml-language-server: $schema=assistant.schema.json`."""

    model_config = ConfigDict(
        title="threadrunner assistant",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    name: str = Field(
        pattern=f"^{_NAME.pattern}$",
        description="The assistant's name: the file's name without .yaml, and what POST /v1/threads takes.",
    )
    description: str = Field(default="", description="What the assistant is for (for people).")
    instructions: str = Field(
        min_length=1, description="The system instructions the model gets on every run."
    )
    model: str | None = Field(
        default=None, min_length=1, description="The model; default: the environment's (cdk.json)."
    )
    engine: Literal["responses", "assistants", "chat"] | None = Field(
        default=None, description="The engine threads of this assistant use; default: the environment's."
    )
    tools: list[ToolEntry] = Field(
        default_factory=list,
        description="The tools the model may call: a registered tool's name, or {name: ...}.",
    )
    database: DatabaseAccess | None = Field(
        default=None, description="What the SQL tools (get_table_schema, query_database) may read."
    )
    web_search: bool = Field(
        default=False,
        description="Let the model search the web (a hosted tool of the responses engine); the answer's "
        "sources become the run's citations.",
    )
    mcp: list[McpServer] = Field(
        default_factory=list,
        description="Remote MCP servers the model may call (responses engine); each must be on the "
        "environment's allow-list (cdk.json mcp_servers).",
    )
    knowledge: KnowledgeList = Field(
        default_factory=list,
        description="Documents the model searches (file_search): paths in the repository (e.g. "
        "docs/handbook.md) or S3 objects (s3://bucket/key); synced to the engine's retrieval store.",
    )
    # Filled from ``tools`` (never written in the YAML): the client tools' declarations, and the server
    # tools whose calls wait for a person's approval.
    _client_tools: dict[str, ClientTool] = PrivateAttr(default_factory=dict)
    _approval_required: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_tool_forms(cls, data: Any, handler: Any) -> Any:
        config = handler(data)
        entries = data.get("tools") if isinstance(data, dict) else None
        if isinstance(config, AssistantConfig) and isinstance(entries, list):
            config._client_tools = {
                entry["name"]: ClientTool.model_validate(entry) for entry in entries if is_client_entry(entry)
            }
            config._approval_required = frozenset(
                entry["name"]
                for entry in entries
                if isinstance(entry, dict)
                and not is_client_entry(entry)
                and entry.get("approval") == "required"
            )
        return config

    @property
    def client_tools(self) -> dict[str, ClientTool]:
        """name -> declaration of the tools the application runs (POST /v1/runs/{id}/tool_outputs)."""
        return self._client_tools

    @property
    def approval_required(self) -> frozenset[str]:
        """The server tools whose calls wait for POST /v1/runs/{id}/approvals."""
        return self._approval_required

    @property
    def server_tools(self) -> list[str]:
        return [name for name in self.tools if name not in self._client_tools]


def check_hosted_tools(config: AssistantConfig, *, engine: str, allowed: Sequence[AllowedMcpServer]) -> None:
    """The API's check of an assistant's hosted tools against the thread's engine and the environment's MCP
    allow-list (synth and the local stack's start check the files; a running local stack reads edits): a
    422 naming the assistant's file and key, never a failed run."""
    problems = hosted_tool_problems(
        config.web_search,
        config.mcp,
        engine=engine,
        engine_is_the_assistants=config.engine is not None,
        allowed=allowed,
    )
    if problems:
        loc, message = problems[0]
        key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
        raise InvalidRequestError(f"assistants/{config.name}{SUFFIX}: {key}: {message}", field="assistant")


def assistant_json_schema() -> dict[str, Any]:
    """What ``assistants/assistant.schema.json`` holds."""
    return AssistantConfig.model_json_schema()


def registered_tool_names() -> list[str]:
    """The tools an assistant may list: the registry's."""
    from threadrunner.tools.registry import tool_names  # the registry imports this module

    return tool_names()


def load_assistant(directory: Path, name: str) -> AssistantConfig:
    """Load one assistant by name; an unknown name is a client error naming the ``assistant`` field.

    The file is read on every call and parsed again only when its bytes changed: the local stack picks up
    an edited definition on the next request, and a Lambda (whose files never change) reads a small file.
    """
    if not _NAME.fullmatch(name):  # also keeps the name from walking out of the directory
        raise InvalidRequestError(f"unknown assistant {name!r}", field="assistant")
    path = directory / f"{name}{SUFFIX}"
    try:
        text = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise InvalidRequestError(f"unknown assistant {name!r}", field="assistant") from None
    return _parsed(str(path), name, text, frozenset(registered_tool_names()))


@lru_cache(maxsize=128)
def _parsed(path: str, name: str, text: bytes, tools: frozenset[str]) -> AssistantConfig:
    # Imported here: assistant_validation builds on this module's models (and reads YAML, which a Lambda that
    # only uses the models does without).
    from threadrunner.assistant_validation import check_definition, display_path

    return check_definition(display_path(Path(path)), name, text, tools)
