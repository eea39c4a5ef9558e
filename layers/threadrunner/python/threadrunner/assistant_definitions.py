"""Assistants as code: ``assistants/<name>.yaml`` holds one assistant's instructions, model and tools.

One pydantic model (``AssistantConfig``) reads the YAML everywhere: at ``make synth`` (infra/app.py), at the
local stack's start, in ``threadrunner assistants validate``, and when the API and the workflow steps load an
assistant. A problem is reported with the file, the line and the key, e.g.
``assistants/foo.yaml:7: tools[1]: unknown tool 'get_wether' (registered: get_table_schema, query_database)``.

``assistants/assistant.schema.json`` is this model's JSON schema (``threadrunner assistants schema``), for
editors; tests/unit/test_assistant_definitions.py keeps it up to date.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    model_validator,
)

from threadrunner.assistant_knowledge import KnowledgeList, documents_root, knowledge_problems
from threadrunner.errors import InvalidRequestError
from threadrunner.hosted_tools import AllowedMcpServer, HostedToolPolicy, McpServer, hosted_tool_problems
from threadrunner.models.deferred_model import DeferredModel

# yaml is imported by the functions that read a definition: a Lambda that only uses the models (the API's
# INIT, a step's) does without it.
if TYPE_CHECKING:
    import yaml

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


def _is_client(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("runs_on") == "client"


def _tool_form(entry: Any) -> str:
    """Which form a tools entry is in: a name, a server tool's mapping or a client tool's (by runs_on)."""
    if isinstance(entry, dict):
        return "ClientTool" if _is_client(entry) else "ServerTool"
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
                entry["name"]: ClientTool.model_validate(entry) for entry in entries if _is_client(entry)
            }
            config._approval_required = frozenset(
                entry["name"]
                for entry in entries
                if isinstance(entry, dict) and not _is_client(entry) and entry.get("approval") == "required"
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


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 0: the file as a whole (it cannot be read)
    key: str  # the key path, e.g. tools[1] or database.tables; "" for the file as a whole
    message: str

    def __str__(self) -> str:
        line = f":{self.line}" if self.line else ""
        return f"{self.file}{line}: {self.key + ': ' if self.key else ''}{self.message}"


class AssistantDefinitionError(ValueError):
    """One or more assistant definitions are invalid; ``str()`` is one problem per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


def registered_tool_names() -> list[str]:
    """The tools an assistant may list: the registry's."""
    from threadrunner.tools.registry import tool_names  # the registry imports this module

    return tool_names()


def read_definition(path: Path, *, registered_tools: Collection[str] | None = None) -> AssistantConfig:
    """Read and check one definition; every problem found is in the AssistantDefinitionError raised."""
    text = path.read_bytes()
    tools = registered_tool_names() if registered_tools is None else registered_tools
    return _checked(_display(path), path.stem, text, frozenset(tools), documents=documents_root(path.parent))


def check_paths(
    paths: Iterable[Path], policy: HostedToolPolicy | None = None
) -> tuple[list[AssistantConfig], list[Problem]]:
    """Every definition in ``paths`` (files, or folders of ``*.yaml``), and every problem they have. With
    ``policy`` (an environment's engine and MCP allow-list), hosted tools it cannot run are problems too."""
    tools = frozenset(registered_tool_names())
    configs: list[AssistantConfig] = []
    problems: list[Problem] = []
    for path in _definition_files(paths, problems):
        try:
            configs.append(
                _checked(
                    _display(path),
                    path.stem,
                    path.read_bytes(),
                    tools,
                    policy,
                    documents=documents_root(path.parent),
                )
            )
        except AssistantDefinitionError as error:
            problems.extend(error.problems)
        except OSError as error:
            problems.append(Problem(_display(path), 0, "", f"cannot be read: {error.strerror or error}"))
    return configs, problems


def validate_assistants(directory: Path, policy: HostedToolPolicy | None = None) -> list[AssistantConfig]:
    """The assistants of ``directory``, or an AssistantDefinitionError naming every problem (with
    ``policy``, also every hosted tool the environment cannot run: see check_paths)."""
    configs, problems = check_paths([directory], policy)
    if problems:
        raise AssistantDefinitionError(problems)
    return configs


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
    return _checked(_display(Path(path)), name, text, tools)


def _definition_files(paths: Iterable[Path], problems: list[Problem]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.glob(f"*{SUFFIX}")))
            # A definition under another suffix would be skipped without a word: name it.
            problems.extend(
                Problem(_display(other), 0, "", f"assistant definitions end in {SUFFIX}")
                for other in sorted(path.glob("*.yml"))
            )
        elif path.exists():
            found.append(path)
        else:
            problems.append(Problem(_display(path), 0, "", "no such file or folder"))
    return found


def _checked(
    file: str,
    stem: str,
    text: bytes,
    tools: frozenset[str],
    policy: HostedToolPolicy | None = None,
    *,
    documents: Path | None = None,
) -> AssistantConfig:
    """The definition in ``text`` (the file ``file``, named ``stem``), checked against the model and the
    registered tools, and with ``policy`` against what the environment offers (hosted tools)."""
    import yaml

    try:
        root, data = _compose(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        raise AssistantDefinitionError(
            [Problem(file, line, "", f"not valid YAML: {error.problem or error}")]
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise AssistantDefinitionError([Problem(file, 1, "", f"not valid YAML: {error}")]) from None
    if root is None or not isinstance(root, yaml.MappingNode):
        line = root.start_mark.line + 1 if root is not None else 1
        raise AssistantDefinitionError(
            [Problem(file, line, "", "must be a mapping of keys (name, instructions, tools, ...)")]
        )
    # The tools are checked on the data as written, so a typo'd tool is named beside any other problem.
    problems = _duplicate_keys(file, root) + _tool_problems(file, root, data.get("tools"), tools)
    config: AssistantConfig | None = None
    try:
        config = AssistantConfig.model_validate(data)
    except ValidationError as error:
        problems.extend(_from_validation(file, root, error))
    if config is not None and config.name != stem:
        line, key = _locate(root, ("name",))
        problems.append(
            Problem(file, line, key, f"{config.name!r} does not match the file's name ({stem!r})")
        )
    if config is not None and policy is not None:
        for loc, message in hosted_tool_problems(
            config.web_search,
            config.mcp,
            engine=config.engine or policy.engine,
            engine_is_the_assistants=config.engine is not None,
            allowed=policy.mcp_servers,
        ):
            line, key = _locate(root, loc)
            problems.append(Problem(file, line, key, message))
    if config is not None:  # knowledge documents: in the repository (``documents``), on a retrieval engine
        for loc, message in knowledge_problems(
            config.knowledge,
            config.engine,
            root=documents,
            default_engine=policy.engine if policy is not None else None,
        ):
            line, key = _locate(root, loc)
            problems.append(Problem(file, line, key, message))
    if problems or config is None:
        raise AssistantDefinitionError(sorted(problems, key=lambda problem: problem.line))
    return config


def _tool_problems(file: str, root: yaml.Node, entries: Any, tools: frozenset[str]) -> list[Problem]:
    """Tools that are not registered, or listed twice (the model checks each entry's form)."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not isinstance(name, str):
            continue
        line, key = _locate(root, ("tools", index))
        if _is_client(entry):
            if name in tools:
                problems.append(Problem(file, line, key, f"{name!r} is a registered server tool's name"))
            elif name in seen:
                problems.append(Problem(file, line, key, f"{name!r} is listed twice"))
        elif name not in tools:
            problems.append(Problem(file, line, key, _unknown_tool(name, tools)))
        elif name in seen:
            problems.append(Problem(file, line, key, f"{name!r} is listed twice"))
        seen.add(name)
    return problems


def _compose(text: bytes) -> tuple[yaml.Node | None, Any]:
    """The node tree (it keeps line numbers) and the data built from it: one parse."""
    import yaml

    loader = yaml.SafeLoader(text.decode("utf-8"))
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]


def _duplicate_keys(file: str, node: yaml.Node, path: str = "") -> list[Problem]:
    """YAML keeps the last of two equal keys without a word; a definition should not say two things."""
    import yaml

    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            name = str(key.value)
            where = f"{path}.{name}" if path else name
            if name in first:
                problems.append(Problem(file, line, where, f"duplicate key (first on line {first[name]})"))
            first.setdefault(name, line)
            problems.extend(_duplicate_keys(file, value, where))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems.extend(_duplicate_keys(file, item, f"{path}[{index}]"))
    return problems


# The tags pydantic puts in an error's location for the branch of a union ("str", "ServerTool").
_UNION_BRANCHES = {"str", ServerTool.__name__, ClientTool.__name__}


def _from_validation(file: str, root: yaml.Node, error: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    errors = error.errors(include_url=False)
    for detail in errors:
        loc = tuple(part for part in detail["loc"] if part not in _UNION_BRANCHES)
        if (
            detail["type"] == "string_type"
            and len(detail["loc"]) > len(loc)
            and _other_branch_failed(errors, detail)
        ):
            continue  # a mapping given for a tool: the ServerTool branch's errors say what is wrong
        line, key = _locate(root, loc)
        problems.append(Problem(file, line, key, _message(detail, loc)))
    return list(dict.fromkeys(problems))


def _other_branch_failed(errors: list[Any], detail: Any) -> bool:
    """Whether a union's other branch (the long form of a tool) has errors at the same entry."""
    prefix = detail["loc"][:-1]
    return any(
        other is not detail and tuple(other["loc"][: len(prefix)]) == tuple(prefix) for other in errors
    )


def _message(detail: Any, loc: tuple[int | str, ...]) -> str:
    kind = detail["type"]
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r} (known keys: {', '.join(_known_keys(loc[:-1]))})"
    if kind == "missing":
        return "required key missing"
    if kind in ("model_type", "string_type") and loc[:1] == ("tools",) and len(loc) == 2:
        return f"a tool is a registered tool's name or a mapping with its name (got {detail['input']!r})"
    if kind == "value_error":
        return str(detail["msg"]).removeprefix("Value error, ")
    shown = detail.get("input")
    got = f" (got {shown!r})" if isinstance(shown, str | int | float | bool) or shown is None else ""
    return f"{detail['msg']}{got}"


def _known_keys(parent: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = AssistantConfig
    if parent[:1] == ("tools",):
        model = ServerTool
    elif parent[:1] == ("database",):
        model = DatabaseAccess
    elif parent[:1] == ("mcp",):
        model = McpServer
    return list(model.model_fields)


def _locate(root: yaml.Node, loc: tuple[int | str, ...]) -> tuple[int, str]:
    """The line of the key (or list item) ``loc`` names, and its path (``tools[1].runs_on``). A key that is
    not there (a missing one) gets the line of the mapping it belongs in."""
    import yaml

    node, line, key = root, root.start_mark.line + 1, ""
    found = True
    for part in loc:
        key = f"{key}[{part}]" if isinstance(part, int) else (f"{key}.{part}" if key else str(part))
        if not found:
            continue
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part):
                    child, line = value_node, key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            found = False
        else:
            node = child
    return line, key


def _unknown_tool(name: str, tools: Collection[str]) -> str:
    close = difflib.get_close_matches(name, sorted(tools), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown tool {name!r}{hint} (registered: {', '.join(sorted(tools)) or 'none'})"


def _display(path: Path) -> str:
    """The path as the person running the check would type it: relative to the working folder when inside."""
    try:
        return os.path.relpath(path) if path.is_absolute() and Path.cwd() in path.parents else str(path)
    except (OSError, ValueError):
        return str(path)
