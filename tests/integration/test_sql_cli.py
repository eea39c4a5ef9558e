"""`threadrunner tools call` runs a tool against the configured database and prints its JSON output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from threadrunner.settings import reset_settings
from threadrunner.tools.database import close_databases
from threadrunner.tools.sample_data import build_sample_database
from typer.testing import CliRunner

from local.cli import app


@pytest.fixture
def sample_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = build_sample_database(tmp_path / "sample.db")
    monkeypatch.setenv("THREADRUNNER_SAMPLE_DATABASE_PATH", str(path))
    reset_settings()
    yield path
    close_databases()
    reset_settings()


def test_a_good_query_prints_rows_and_exits_0(sample_database: Path) -> None:
    query = json.dumps(
        {"query": "SELECT region, COUNT(*) AS n FROM customers GROUP BY region ORDER BY region"}
    )
    result = CliRunner().invoke(app, ["tools", "call", "query_database", query])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["columns"] == ["region", "n"]
    assert [row[0] for row in body["rows"]] == ["Asia Pacific", "Europe", "Latin America", "North America"]
    assert sum(row[1] for row in body["rows"]) == 300


def test_a_refused_query_prints_the_error_and_exits_1(sample_database: Path) -> None:
    query = json.dumps({"query": "SELECT * FROM sqlite_master; DROP TABLE sales"})
    result = CliRunner().invoke(app, ["tools", "call", "query_database", query])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"error": "exactly one statement is allowed, found 2"}


def test_the_schema_tool_works_from_the_command_line_too(sample_database: Path) -> None:
    result = CliRunner().invoke(app, ["tools", "call", "get_table_schema", '{"table": "customers"}'])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["primary_key"] == ["id"]
