"""`threadrunner assistants validate [PATH...]`: 0 and "N assistants valid", or 1 and every problem with its file,
line and key; `threadrunner assistants schema` prints what assistants/assistant.schema.json holds."""

from __future__ import annotations

import json
from pathlib import Path

from threadrunner.assistant_definitions import assistant_json_schema
from typer.testing import CliRunner

from local.cli import app

GOOD = "name: {name}\ninstructions: Answer briefly.\ntools: [get_table_schema]\n"


def test_valid_definitions_exit_0_with_their_count(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / f"{name}.yaml").write_text(GOOD.format(name=name))

    result = CliRunner().invoke(app, ["assistants", "validate", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "2 assistants valid"


def test_without_paths_the_repositorys_assistants_are_checked() -> None:
    result = CliRunner().invoke(app, ["assistants", "validate"])

    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("valid")


def test_problems_exit_1_naming_file_line_and_key(tmp_path: Path) -> None:
    # Given one good file and one with a typo'd tool and an unknown key, checked by name
    (tmp_path / "good.yaml").write_text(GOOD.format(name="good"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninstructions: x\ntools:\n  - get_wether\nmodle: gpt-5\n")

    result = CliRunner().invoke(app, ["assistants", "validate", str(tmp_path / "good.yaml"), str(bad)])

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0].startswith(f"{bad}:4: tools[0]: unknown tool 'get_wether' (registered: ")
    assert lines[1].startswith(f"{bad}:5: modle: unknown key 'modle'")
    assert lines[2] == "2 problems found"


def test_a_missing_path_is_a_problem(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["assistants", "validate", str(tmp_path / "nope.yaml")])

    assert result.exit_code == 1
    assert f"{tmp_path / 'nope.yaml'}: no such file or folder" in result.output


def test_schema_prints_the_models_json_schema() -> None:
    result = CliRunner().invoke(app, ["assistants", "schema"])

    assert result.exit_code == 0
    assert json.loads(result.output) == assistant_json_schema()
