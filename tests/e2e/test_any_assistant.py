"""Everything offline without a script: the emulator's default model runs an assistant that is not the Data
Analyst (the two registered tools, other instructions, a question not about sales) through the local stack,
and analyses a CSV handed to the code interpreter. Every exchange is checked against the OpenAI OpenAPI
description by the ``upstream`` fixture."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from threadrunner.settings import ToolSettings

from local.emulator import EmulatorServer
from local.emulator.analysis import analyse_csv
from tests.e2e.conftest import wait_for_run
from tests.support.uploads import SALES_CSV, staged_file

GUIDE = """\
name: schema-guide
description: Explains the sample database's tables.
instructions: |
  You explain how the sample database is organised. Describe tables before querying them.
tools:
  - get_table_schema
  - query_database
database:
  tables: [sales, customers, products]
"""
QUESTION = "Describe the products table, then query the database for how many rows it has."


@pytest.fixture
def guide(tmp_path: Path, configure: Callable[..., None]) -> str:
    """A second assistant beside the Data Analyst, in an assistants directory of this test's own."""
    folder = tmp_path / "assistants"
    shutil.copytree(ToolSettings().assistants_dir, folder)
    (folder / "schema-guide.yaml").write_text(GUIDE)
    configure(THREADRUNNER_ASSISTANTS_DIR=str(folder))
    return "schema-guide"


@pytest.mark.parametrize("engine", ["responses", "assistants", "chat"])
def test_another_assistant_runs_its_tools_and_answers_with_their_outputs_without_a_script(
    alice: httpx.Client, upstream: EmulatorServer, guide: str, engine: str, configure: Callable[..., None]
) -> None:
    configure(THREADRUNNER_ENGINE=engine)
    # Given a thread with the schema guide and no scripted model turn
    thread = alice.post("/v1/threads", json={"assistant": guide, "purpose": f"guide-{engine}"})
    assert thread.status_code == 201, thread.text
    # When the user asks a question that names both tools (and is not about sales)
    accepted = alice.post(f"/v1/threads/{thread.json()['id']}/runs", json={"message": QUESTION})
    assert accepted.status_code == 202, accepted.text
    run = wait_for_run(alice, accepted.json()["id"])
    # Then the model called both tools once, with arguments from their schemas and the question
    assert run["status"] == "completed", run
    calls = {call["name"]: call for call in run["tool_calls"]}
    assert sorted(calls) == ["get_table_schema", "query_database"]
    assert json.loads(calls["get_table_schema"]["arguments"]) == {"table": "products"}
    assert json.loads(calls["query_database"]["arguments"]) == {"query": QUESTION}
    schema = json.loads(calls["get_table_schema"]["output"])
    assert schema["table"] == "products" and schema["columns"]
    assert "error" in json.loads(calls["query_database"]["output"])  # a question is not SQL
    # and answered quoting what they returned
    assert run["answer"].startswith(f'You asked: "{QUESTION}"'), run["answer"]
    assert f"- get_table_schema returned {calls['get_table_schema']['output'][:60]}" in run["answer"]
    assert "- query_database failed: " in run["answer"]
    assert upstream.pending_plans == 0


@pytest.mark.parametrize("engine", ["responses", "assistants"])
def test_an_uploaded_csv_is_analysed_by_the_default_model(
    alice: httpx.Client, upstream: EmulatorServer, engine: str, configure: Callable[..., None]
) -> None:
    configure(THREADRUNNER_ENGINE=engine)
    # Given a CSV uploaded by hand, and no script
    thread = alice.post("/v1/threads", json={"assistant": "data-analyst", "purpose": f"by-hand-{engine}"})
    file = staged_file(alice, thread.json()["id"])
    assert file["status"] == "ready", file
    # When the user asks about it
    accepted = alice.post(
        f"/v1/threads/{thread.json()['id']}/runs",
        json={"message": "What is in this file?", "file_ids": [file["id"]]},
    )
    run = wait_for_run(alice, accepted.json()["id"])
    # Then the run serves the chart and the summary the code interpreter wrote
    assert run["status"] == "completed", run
    assert "only answer questions about sales" not in run["answer"]
    served = {output["name"].rsplit(".", 1)[1]: httpx.get(output["url"]).content for output in run["files"]}
    expected = analyse_csv(SALES_CSV)
    assert served == {"png": expected.chart, "csv": expected.summary}
