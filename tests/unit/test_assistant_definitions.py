"""Assistant definitions (assistants/<name>.yaml): one model, problems named by file, line and key, the JSON
schema kept up to date, and an edited file read again on the next load."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from threadrunner.assistant_definitions import (
    SCHEMA_FILE,
    assistant_json_schema,
    load_assistant,
    registered_tool_names,
)
from threadrunner.assistant_validation import (
    AssistantDefinitionError,
    check_paths,
    read_definition,
    validate_assistants,
)
from threadrunner.errors import InvalidRequestError
from threadrunner.tools.registry import TOOLS, tool_specs

ASSISTANTS_DIR = Path(__file__).resolve().parents[2] / "assistants"
GOOD = """\
name: helper
description: Helps.
instructions: Answer briefly.
tools:
  - get_table_schema
  - name: query_database
    runs_on: server
    approval: none
database:
  tables: [sales]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(AssistantDefinitionError) as raised:
        read_definition(path)
    return [str(problem) for problem in raised.value.problems]


def test_the_repositorys_assistants_are_valid_and_list_only_registered_tools() -> None:
    configs = validate_assistants(ASSISTANTS_DIR)

    assert configs, "no assistants/*.yaml"
    for config in configs:
        assert set(config.tools) <= set(TOOLS), config.name


def test_the_schema_file_is_generated_from_the_model() -> None:
    written = json.loads((ASSISTANTS_DIR / SCHEMA_FILE).read_text())

    assert written == assistant_json_schema(), (
        f"assistants/{SCHEMA_FILE} is out of date: .venv/bin/threadrunner assistants schema > assistants/{SCHEMA_FILE}"
    )


def test_the_schema_refuses_unknown_keys_at_every_level() -> None:
    schema = assistant_json_schema()

    assert schema["additionalProperties"] is False
    assert all(definition["additionalProperties"] is False for definition in schema["$defs"].values())


def test_a_tool_is_a_name_or_a_mapping_with_its_name(tmp_path: Path) -> None:
    config = read_definition(write(tmp_path, "helper.yaml", GOOD))

    assert config.tools == ["get_table_schema", "query_database"]
    assert config.database is not None and config.database.tables == ["sales"]


def test_the_registered_tools_are_the_registrys() -> None:
    assert registered_tool_names() == sorted(TOOLS)


def test_a_typod_tool_is_named_with_its_file_line_and_position(tmp_path: Path) -> None:
    # Given a definition whose second tool is misspelt (line 6)
    path = write(
        tmp_path,
        "helper.yaml",
        """\
        name: helper
        instructions: Answer briefly.
        # the tools
        tools:
          - get_table_schema
          - query_databse
        """,
    )

    # Then the problem names the file, the line, the entry, the close match and what is registered
    registered = ", ".join(sorted(TOOLS))
    assert problems_of(path) == [
        f"{path}:6: tools[1]: unknown tool 'query_databse'; did you mean 'query_database'? (registered: {registered})"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: helper\ninstructions: x\ntoolz: [query_database]\n",
            ":3: toolz: unknown key 'toolz' (known keys: name",
        ),
        (
            "name: helper\ninstructions: x\ndatabase:\n  tabels: [a]\n",
            ":4: database.tabels: unknown key 'tabels'",
        ),
        (
            "name: helper\ninstructions: x\ndatabase:\n  tabels: [a]\n",
            ":3: database.tables: required key missing",
        ),
        ("name: helper\ninstructions: x\nfiles: [a.pdf]\n", ":3: files: unknown key 'files'"),
        (
            "name: helper\ninstructions: x\ntools:\n  - nam: query_database\n",
            ":4: tools[0].nam: unknown key 'nam'",
        ),
        (
            "name: helper\ninstructions: x\ntools:\n  - nam: query_database\n",
            ":4: tools[0].name: required key missing",
        ),
        (
            "name: helper\ninstructions: x\ntools: [3]\n",
            ":3: tools[0]: a tool is a registered tool's name or",
        ),
        (
            "name: helper\ninstructions: x\nengine: bard\n",
            ":3: engine: Input should be 'responses', 'assistants' or",
        ),
        ("name: helper\n", ":1: instructions: required key missing"),
        ("name: other\ninstructions: x\n", ":1: name: 'other' does not match the file's name ('helper')"),
        ("name: helper\ninstructions: x\nname: helper\n", ":3: name: duplicate key (first on line 1)"),
        ("name: helper\ninstructions: [x\n", ":3: not valid YAML"),
        ("- name: helper\n", ":1: must be a mapping of keys"),
        ("", ":1: must be a mapping of keys"),
        (
            "name: helper\ninstructions: x\ntools:\n  - query_database\n  - query_database\n",
            ":5: tools[1]: 'query_database' is listed twice",
        ),
    ],
)
def test_each_problem_names_its_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "helper.yaml", text)

    problems = problems_of(path)

    assert any(problem.startswith(f"{path}{expected}") for problem in problems), problems


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("runs_on: client", ":5: tools[0].description: required key missing"),
        ("description: Looks things up.", ":5: tools[0]: description is for client tools (runs_on: client)"),
        ("runs_on: moon", ":6: tools[0].runs_on: Input should be 'server' (got 'moon')"),
        ("approval: maybe", ":6: tools[0].approval: Input should be 'none' or 'required' (got 'maybe')"),
    ],
)
def test_a_long_form_tool_entry_is_checked_for_where_it_runs(
    tmp_path: Path, entry: str, expected: str
) -> None:
    # Given a long-form tool entry that says something the runtime cannot do
    text = f"name: helper\ninstructions: x\ntools:\n  # the one tool\n  - name: query_database\n    {entry}\n"
    path = write(tmp_path, "helper.yaml", text)

    # Then it is refused, naming the line and the key
    problems = problems_of(path)
    assert any(problem.startswith(f"{path}{expected}") for problem in problems), problems


CLIENT_TOOL = """\
name: helper
instructions: x
tools:
  - name: query_database
    approval: required
  - name: get_weather
    runs_on: client
    description: The weather, from the application.
    parameters:
      type: object
      properties:
        city: {type: string}
      required: [city]
"""


def test_client_tools_and_approval_gates_are_read_with_their_declarations(tmp_path: Path) -> None:
    config = read_definition(write(tmp_path, "helper.yaml", CLIENT_TOOL))

    assert config.tools == ["query_database", "get_weather"]
    assert config.approval_required == {"query_database"}
    assert config.client_tools["get_weather"].parameters["required"] == ["city"]
    assert [spec.name for spec in tool_specs(config)] == ["query_database", "get_weather"]
    assert tool_specs(config)[1].description == "The weather, from the application."


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ("{type: string}", "parameters must be a JSON schema of type object"),
        ("{type: object, properties: {city: {type: text}}}", "'text' is not a JSON schema type"),
        ("{type: object, properties: {}, required: [city]}", "does not define: city"),
    ],
)
def test_a_client_tool_needs_a_json_schema_object_for_its_parameters(
    tmp_path: Path, parameters: str, expected: str
) -> None:
    text = (
        "name: helper\ninstructions: x\ntools:\n  - name: lookup\n    runs_on: client\n"
        f"    description: d\n    parameters: {parameters}\n"
    )
    problems = problems_of(write(tmp_path, "helper.yaml", text))
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_client_tool_may_not_take_a_registered_tools_name(tmp_path: Path) -> None:
    text = (
        "name: helper\ninstructions: x\ntools:\n  - name: query_database\n    runs_on: client\n"
        "    description: d\n    parameters: {type: object}\n"
    )
    problems = problems_of(write(tmp_path, "helper.yaml", text))
    assert any("registered server tool's name" in problem for problem in problems), problems


def test_a_folder_check_reports_every_file_and_flags_yml(tmp_path: Path) -> None:
    write(tmp_path, "helper.yaml", GOOD)
    write(tmp_path, "broken.yaml", "name: broken\ninstructions: x\nmodle: gpt-5\n")
    write(tmp_path, "stray.yml", GOOD)

    configs, problems = check_paths([tmp_path])

    assert [config.name for config in configs] == ["helper"]
    assert [str(problem) for problem in problems] == [
        f"{tmp_path / 'stray.yml'}: assistant definitions end in .yaml",
        f"{tmp_path / 'broken.yaml'}:3: modle: unknown key 'modle' (known keys: name, description, instructions, "
        "model, engine, tools, database, web_search, mcp, knowledge)",
    ]
    with pytest.raises(AssistantDefinitionError, match=r"broken\.yaml:3: modle"):
        validate_assistants(tmp_path)


def test_paths_inside_the_working_folder_are_shown_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "helper.yaml", "name: helper\ninstructions: x\nmodle: gpt-5\n")
    monkeypatch.chdir(tmp_path)

    _, problems = check_paths([tmp_path])

    assert str(problems[0]).startswith("helper.yaml:3: modle:")


def test_an_edited_definition_is_read_again_on_the_next_load(tmp_path: Path) -> None:
    # Given a loaded assistant
    path = write(tmp_path, "helper.yaml", GOOD)
    assert load_assistant(tmp_path, "helper").engine is None
    assert load_assistant(tmp_path, "helper") is load_assistant(tmp_path, "helper")  # parsed once

    # When its file changes, even within the same second and to the same size
    stat = path.stat()
    path.write_text(GOOD.replace("Helps.", "Helps!") + "engine: chat\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    # Then the next load has the change, and a broken edit is an error naming the line, not a stale answer
    assert load_assistant(tmp_path, "helper").engine == "chat"
    path.write_text(GOOD + "engin: chat\n")
    with pytest.raises(AssistantDefinitionError, match=r"helper\.yaml:11: engin: unknown key"):
        load_assistant(tmp_path, "helper")


@pytest.mark.parametrize("name", ["nobody", "../assistants/data-analyst", "Data Analyst", ""])
def test_an_unknown_assistant_is_a_client_error_naming_the_assistant_field(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        load_assistant(tmp_path, name)

    assert raised.value.field == "assistant"
