"""`threadrunner demo --assistant NAME --message TEXT` on the whole local stack with the emulator (no key):
another assistant answers from its tools, and the output says which engine ran and what to try next."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from threadrunner.settings import ToolSettings
from typer.testing import CliRunner

from local.cli import app

pytestmark = pytest.mark.xdist_group("local_stack")  # moto is process-global: one stack at a time

GUIDE = """\
name: schema-guide
description: Explains the sample database's tables.
instructions: |
  You explain how the sample database is organised.
tools:
  - get_table_schema
  - query_database
database:
  tables: [sales, customers, products]
"""


def test_demo_asks_the_named_assistant_and_says_what_ran_and_what_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an assistant of our own beside the Data Analyst, and no OpenAI key
    folder = tmp_path / "assistants"
    shutil.copytree(ToolSettings().assistants_dir, folder)
    (folder / "schema-guide.yaml").write_text(GUIDE)
    monkeypatch.setenv("THREADRUNNER_ASSISTANTS_DIR", str(folder))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    # When the demo asks it a question of our own
    result = CliRunner().invoke(
        app,
        ["demo", "--assistant", "schema-guide", "--message", "Describe the customers table"],
        env={"COLUMNS": "200"},
    )
    # Then the run completed on the emulator, calling the tool the question named
    out = result.output
    assert result.exit_code == 0, out
    assert "with the schema-guide assistant" in out
    assert "Question: Describe the customers table" in out
    assert "get_table_schema" in out and '"table": "customers"' in out
    assert "get_table_schema returned" in out
    # and it says which engine ran and what to try next
    assert "Engine: responses (the emulator's deterministic model)" in out
    assert "What to try next" in out and "threadrunner tools list" in out
    assert "threadrunner demo --assistant schema-guide --message" in out


def test_the_demo_answers_from_the_bundled_handbook_with_its_citation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given no OpenAI key: the emulator, the handbook synced at the stack's start
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    # When the demo asks the handbook assistant about a policy
    result = CliRunner().invoke(
        app,
        ["demo", "--assistant", "handbook", "--message", "How many days of paid holiday do employees have?"],
        env={"COLUMNS": "200"},
    )
    # Then the answer quotes the handbook and names it as its source
    out = result.output
    assert result.exit_code == 0, out
    assert "28 days of paid holiday" in out
    assert "Source: handbook.md (file" in out
    assert "Answered without" not in out
