"""Reading and checking assistant definitions (``assistants/<name>.yaml``): every problem named by file, line
and key, e.g. ``assistants/foo.yaml:7: tools[1]: unknown tool 'get_wether' (registered: get_table_schema,
query_database)``.

``check_paths`` and ``validate_assistants`` check files and folders (``make synth``, the local stack's start,
``threadrunner assistants validate``); ``check_definition`` checks one file's bytes against the models of
threadrunner/assistant_definitions.py (which ``load_assistant`` there uses too), mapping each problem to the
line of the YAML it is on.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from threadrunner.assistant_definitions import (
    SUFFIX,
    AssistantConfig,
    ClientTool,
    DatabaseAccess,
    ServerTool,
    is_client_entry,
    registered_tool_names,
)
from threadrunner.assistant_knowledge import documents_root, knowledge_problems
from threadrunner.hosted_tools import HostedToolPolicy, McpServer, hosted_tool_problems

# yaml is imported by the functions that read a definition: a Lambda that only uses the models (the API's
# INIT, a step's) does without it.
if TYPE_CHECKING:
    import yaml


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


def read_definition(path: Path, *, registered_tools: Collection[str] | None = None) -> AssistantConfig:
    """Read and check one definition; every problem found is in the AssistantDefinitionError raised."""
    text = path.read_bytes()
    tools = registered_tool_names() if registered_tools is None else registered_tools
    return check_definition(
        display_path(path), path.stem, text, frozenset(tools), documents=documents_root(path.parent)
    )


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
                check_definition(
                    display_path(path),
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
            problems.append(Problem(display_path(path), 0, "", f"cannot be read: {error.strerror or error}"))
    return configs, problems


def validate_assistants(directory: Path, policy: HostedToolPolicy | None = None) -> list[AssistantConfig]:
    """The assistants of ``directory``, or an AssistantDefinitionError naming every problem (with
    ``policy``, also every hosted tool the environment cannot run: see check_paths)."""
    configs, problems = check_paths([directory], policy)
    if problems:
        raise AssistantDefinitionError(problems)
    return configs


def _definition_files(paths: Iterable[Path], problems: list[Problem]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.glob(f"*{SUFFIX}")))
            # A definition under another suffix would be skipped without a word: name it.
            problems.extend(
                Problem(display_path(other), 0, "", f"assistant definitions end in {SUFFIX}")
                for other in sorted(path.glob("*.yml"))
            )
        elif path.exists():
            found.append(path)
        else:
            problems.append(Problem(display_path(path), 0, "", "no such file or folder"))
    return found


def check_definition(
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
        if is_client_entry(entry):
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


def display_path(path: Path) -> str:
    """The path as the person running the check would type it: relative to the working folder when inside."""
    try:
        return os.path.relpath(path) if path.is_absolute() and Path.cwd() in path.parents else str(path)
    except (OSError, ValueError):
        return str(path)
