"""`threadrunner tools list / call` serve every registered tool; `threadrunner new tool` writes one that works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from threadrunner.settings import reset_settings
from threadrunner.tools import registry
from threadrunner.tools.database import close_databases
from threadrunner.tools.sample_data import build_sample_database
from typer.testing import CliRunner

from local.cli import app
from local.cli_tools import CATALOG_DIR, REPO_ROOT, TOOL_TESTS_DIR
from tests.support.tool_modules import FIXTURE_TOOL, register_fixture_tool


@pytest.fixture
def sample_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = build_sample_database(tmp_path / "sample.db")
    monkeypatch.setenv("THREADRUNNER_SAMPLE_DATABASE_PATH", str(path))
    reset_settings()
    yield path
    close_databases()
    reset_settings()


def test_tools_list_shows_a_tool_written_as_one_module_with_its_schema_and_lambda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_fixture_tool(tmp_path, monkeypatch)

    result = CliRunner().invoke(app, ["tools", "list", "--json"])

    assert result.exit_code == 0, result.output
    listed = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert set(listed) == set(registry.TOOLS) and FIXTURE_TOOL in listed
    assert listed[FIXTURE_TOOL]["schema"] == registry.TOOLS[FIXTURE_TOOL].arguments.model_json_schema()
    assert listed[FIXTURE_TOOL]["lambda"] == "threadrunner-<env>-tool-roll-dice"
    assert listed["query_database"]["capabilities"] == ["database"]
    text = CliRunner().invoke(app, ["tools", "list"])
    assert "roll_dice" in text.stdout and "capabilities: none" in text.stdout


def test_tools_call_works_for_every_registered_tool_with_its_example(
    sample_database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_fixture_tool(tmp_path, monkeypatch)  # one no assistant lists: the CLI adds it
    for tool in registry.registered_tools():
        result = CliRunner().invoke(app, ["tools", "call", tool.name, json.dumps(dict(tool.example))])
        assert result.exit_code == 0, (tool.name, result.output)
        assert "error" not in json.loads(result.stdout), tool.name


def test_tools_call_as_a_named_assistant_keeps_its_tool_list(
    sample_database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_fixture_tool(tmp_path, monkeypatch)
    args = ["tools", "call", FIXTURE_TOOL, '{"sides": 6}', "--assistant", "data-analyst"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "not available to this assistant" in json.loads(result.stdout)["error"]


def test_new_tool_writes_a_module_and_a_test_that_passes(tmp_path: Path) -> None:
    # Given a copy of the library (the real tree is not touched)
    library = tmp_path / "layers" / "threadrunner" / "python"
    shutil.copytree(
        REPO_ROOT / "layers" / "threadrunner" / "python" / "threadrunner",
        library / "threadrunner",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    # When a tool is made in it
    result = CliRunner().invoke(app, ["new", "tool", "shout_back", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    module, test = tmp_path / CATALOG_DIR / "shout_back.py", tmp_path / TOOL_TESTS_DIR / "test_shout_back.py"
    assert module.is_file() and test.is_file()
    # Then its own test passes against that copy: the tool is registered by discovery alone and answers
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(library)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("query_database", "exists already"),
        ("Send-Email", "not a tool name"),
        ("class", "not a tool name"),
        ("9lives", "not a tool name"),
    ],
)
def test_new_tool_refuses_a_taken_or_bad_name(name: str, message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["new", "tool", name, "--root", str(tmp_path)])
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / CATALOG_DIR).exists()


def test_new_tool_refuses_to_overwrite_a_file(tmp_path: Path) -> None:
    existing = tmp_path / TOOL_TESTS_DIR / "test_half_done.py"
    existing.parent.mkdir(parents=True)
    existing.write_text("# mine")
    result = CliRunner().invoke(app, ["new", "tool", "half_done", "--root", str(tmp_path)])
    assert result.exit_code == 1 and "exists already" in result.output
    assert existing.read_text() == "# mine"
