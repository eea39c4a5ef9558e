"""`threadrunner chat` in a pseudo-terminal, typed at as a person would: against a `threadrunner local`
subprocess, a question answered with tool calls shown as they run; against the test's stack, a client tool's
output typed at the prompt and a tool call approved with a yes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.auth import issue_token
from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.support.terminal import Terminal
from tests.unit.local.test_banner import read_banner

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(os.path.abspath(sys.executable)).parent / "threadrunner"
pytestmark = pytest.mark.skipif(not SCRIPT.is_file(), reason="no threadrunner script beside this interpreter")


def _environment() -> dict[str, str]:
    """No activated venv, no upstream configured (the emulator answers), a colour terminal."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONHOME"} and not key.startswith(("OPENAI_", "THREADRUNNER_"))
    }
    environment["TERM"] = "xterm-256color"
    return environment


@pytest.fixture(scope="module")
def served_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`threadrunner local --port 0` in a subprocess, as a person starts it; its API URL."""
    errors = tmp_path_factory.mktemp("local") / "stderr.log"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [str(SCRIPT), "local", "--port", "0"],
            cwd=ROOT,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        yield read_banner(process, errors)["threadrunner local stack"].split()[0]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_chat_answers_a_question_with_its_tool_calls_shown_as_they_run(served_stack: str) -> None:
    # Given `threadrunner chat` with the Data Analyst on the served stack (the token signed locally)
    with Terminal([str(SCRIPT), "chat", "--api-url", served_stack], cwd=ROOT, env=_environment()) as chat:
        chat.expect(r"Chatting with data-analyst on thread thr_\w+")
        chat.expect(r"you> ")
        # When a person asks a sales question
        chat.type_line("What were total sales by region last quarter?")
        # Then each tool call shows with its duration, then the answer
        chat.expect(r"✓ get_table_schema \d+ ms")
        chat.expect(r"✓ query_database \d+ ms")
        answer = chat.expect(r"assistant> [^\n]*\n")
        assert "North" in answer or "region" in answer.lower(), answer
        # And /exit leaves
        chat.expect(r"you> ")
        chat.type_line("/exit")
        assert chat.wait() == 0


def test_chat_asks_for_a_client_tools_output_and_for_approvals(
    local_stack: LocalStack, upstream: EmulatorServer, helper: str
) -> None:
    # Given a model that asks for the application's weather, then a query that needs approval, then answers
    upstream.script(
        Plan.tool_calls([("get_weather", {"city": "Paris"})]),
        Plan.tool_calls([("query_database", {"query": "SELECT COUNT(*) AS n FROM customers"})]),
        Plan.message("Sunny in Paris, and the customers are counted."),
    )
    argv = [
        str(SCRIPT),
        "chat",
        "--assistant",
        helper,
        "--purpose",
        "terminal",
        "--api-url",
        local_stack.api_url,
    ]
    environment = {**_environment(), "THREADRUNNER_TOKEN": issue_token("erin")}
    with Terminal(argv, cwd=ROOT, env=environment) as chat:
        chat.expect(r"you> ")
        chat.type_line("Weather in Paris, and how many customers?")
        # When the prompt asks for the client tool's output, the person types it
        chat.expect(r'get_weather\(\{"city": "Paris"\}\) runs on your side')
        chat.expect(r"output> ")
        chat.type_line("sunny, 24 C")
        # And approves the query with a yes
        chat.expect(r"approve query_database\(.*SELECT COUNT")
        chat.expect(r"yes or no> ")
        chat.type_line("y")
        # Then the query runs and the answer comes
        chat.expect(r"✓ query_database \d+ ms")
        chat.expect(r"assistant> Sunny in Paris, and the customers are counted\.")
        chat.expect(r"you> ")
        # And Ctrl-D leaves
        chat.end_input()
        assert chat.wait() == 0
