"""Starting and stopping the local stack: what it changes in the process, and that it puts it all back."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from threadrunner.settings import storage_settings

from local.stack import LocalStack

pytestmark = pytest.mark.xdist_group("local_stack")  # moto is process-global: one stack at a time

DEFINITION = Path(__file__).resolve().parents[2] / "infra" / "workflows" / "run.asl.json"
SLOW_START = """
def lambda_handler(event, context):
    return {"status": "in_progress", "wait_seconds": 60, "poll_count": 0, "tool_calls": []}
"""


@pytest.fixture
def functions_dir(tmp_path: Path) -> Path:
    (tmp_path / "start_run").mkdir()
    (tmp_path / "start_run" / "handler.py").write_text(SLOW_START)
    return tmp_path


def make_stack(functions_dir: Path, definition_path: Path = DEFINITION) -> LocalStack:
    return LocalStack(
        upstream_base_url="http://127.0.0.1:9/v1",
        api_key="sk-lifecycle",
        functions_dir=functions_dir,
        definition_path=definition_path,
    )


def test_the_environment_is_local_while_running_and_restored_after(
    monkeypatch: pytest.MonkeyPatch, functions_dir: Path
) -> None:
    # Given a shell with a real OpenAI key, AWS credentials and an AWS profile
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-key")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.delenv("THREADRUNNER_BUCKET", raising=False)
    before = dict(os.environ)

    with make_stack(functions_dir) as stack:
        # Then the functions see fake credentials, the local resources, and no key outside the secret
        assert "OPENAI_API_KEY" not in os.environ
        assert "AWS_PROFILE" not in os.environ
        assert os.environ["AWS_ACCESS_KEY_ID"] != "AKIAREALKEY"
        assert os.environ["THREADRUNNER_BUCKET"] == stack.bucket
        assert storage_settings().bucket == stack.bucket

    # And afterwards the process is as it was, with no settings cached from the stack
    assert dict(os.environ) == before
    assert storage_settings().bucket != stack.bucket


def test_a_failed_start_undoes_what_it_did(functions_dir: Path, tmp_path: Path) -> None:
    before = dict(os.environ)
    broken = make_stack(functions_dir, definition_path=tmp_path / "missing.asl.json")

    with pytest.raises(FileNotFoundError):
        broken.start()

    assert dict(os.environ) == before
    with make_stack(functions_dir) as stack:  # the process is free for another stack
        assert stack.api_url.startswith("http://127.0.0.1:")


def test_stop_aborts_running_executions(functions_dir: Path) -> None:
    # Given an execution sitting in a 60 s Wait
    stack = make_stack(functions_dir).start()
    try:
        client = stack.client("stepfunctions")
        execution_input = {
            "run_id": "run_waiting",
            "settings": {"first_wait_seconds": 0, "max_wait_seconds": 0, "max_polls": 10},
            "run": {"status": "queued", "wait_seconds": 0, "poll_count": 0, "tool_calls": []},
        }
        execution_arn = client.start_execution(
            stateMachineArn=stack.state_machine_arn, name="run_waiting", input=json.dumps(execution_input)
        )["executionArn"]
        _wait_for_state(stack, execution_arn, "Wait for model")
    finally:
        started = time.monotonic()
        stack.stop()

    # Then stop() does not wait for it, and no interpreter thread outlives moto
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while any("_execution_logic" in thread.name for thread in threading.enumerate()):
        assert time.monotonic() < deadline, "an execution thread survived stop()"
        time.sleep(0.05)


def _wait_for_state(stack: LocalStack, execution_arn: str, name: str) -> None:
    deadline = time.monotonic() + 10
    while not any(step.name == name for step in stack.execution_trace(execution_arn)):
        assert time.monotonic() < deadline, f"{name} never entered"
        time.sleep(0.02)
