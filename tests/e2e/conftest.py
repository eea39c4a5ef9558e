"""The local stack over HTTP, with the emulator as the upstream: the API as a client sees it.

One stack at a time (moto is process-global); each test resets the emulator and checks that every exchange
with it matched the OpenAI OpenAPI description. The stack polls the upstream (completion "poll") unless a
module asks for both modes: ``pytestmark = BOTH_COMPLETIONS`` runs its tests once per mode, and in webhook
mode the emulator ends each response on its own (time based) and signs a webhook to the stack.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from threadrunner.settings import ToolSettings

from infra.workflows import COMPLETIONS, Completion
from local.auth import issue_token
from local.emulator import EmulatorServer
from local.stack import LocalStack, forget_cached_clients
from tests.support.openai_contract import validate_exchange

FAST = {
    "THREADRUNNER_POLL_FIRST_SECONDS": "0",
    "THREADRUNNER_POLL_MAX_SECONDS": "0",
    "THREADRUNNER_CHECK_WAIT_SECONDS": "0",  # no polling inside Check run: the e2e tests never wait
    "THREADRUNNER_RUN_DEADLINE_SECONDS": "120",
    # completion "webhook": a webhook that never comes is made up for by a poll this soon
    "THREADRUNNER_WEBHOOK_FALLBACK_SECONDS": "3",
}
# completion "webhook": the emulator's model takes this long per call, then its webhook goes out.
WEBHOOK_MODEL_SECONDS = 0.2
BOTH_COMPLETIONS = pytest.mark.parametrize("completion", COMPLETIONS, indirect=True)
TERMINAL = {"completed", "failed", "cancelled", "timed_out"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep e2e tests together on one xdist worker: one LocalStack per process, and no other moto test
    may run while it lives."""
    for item in items:
        if "tests/e2e/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.xdist_group("local_stack"))


@pytest.fixture(scope="package")
def completion(request: pytest.FixtureRequest) -> Completion:
    """The stack's completion mode: "poll", or what BOTH_COMPLETIONS gives (one stack per mode in turn)."""
    return getattr(request, "param", "poll")  # type: ignore[no-any-return]


@pytest.fixture(scope="package")
def emulator_server(completion: Completion) -> Iterator[EmulatorServer]:
    model_seconds = WEBHOOK_MODEL_SECONDS if completion == "webhook" else None
    server = EmulatorServer(port=0, model_seconds=model_seconds).start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def local_stack(emulator_server: EmulatorServer, completion: Completion) -> Iterator[LocalStack]:
    with LocalStack(
        upstream_base_url=emulator_server.base_url,
        api_key="sk-test-e2e",
        overrides=FAST,
        completion=completion,
    ) as stack:
        yield stack


@pytest.fixture
def upstream(emulator_server: EmulatorServer, local_stack: LocalStack) -> Iterator[EmulatorServer]:
    """The emulator, fresh for this test; every exchange is checked against the OpenAPI description.
    Runs an earlier test left running are aborted first: they would talk to this test's emulator. In
    webhook mode the stack's endpoint is registered again, with the secret the stack keeps."""
    local_stack.abort_executions()
    emulator_server.reset()
    if local_stack.completion == "webhook":
        emulator_server.add_webhook_endpoint(
            local_stack.webhook_url, name="threadrunner-local", secret=local_stack.webhook_secret()
        )
    yield emulator_server
    for exchange in emulator_server.exchanges:
        validate_exchange(exchange)


@pytest.fixture
def client_for(local_stack: LocalStack) -> Iterator[Callable[[str], httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(user: str) -> httpx.Client:
        client = httpx.Client(
            base_url=local_stack.api_url, headers={"Authorization": f"Bearer {issue_token(user)}"}, timeout=30
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def alice(client_for: Callable[[str], httpx.Client], upstream: EmulatorServer) -> httpx.Client:
    return client_for("alice")


def wait_for_run(client: httpx.Client, run_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/v1/runs/{run_id}").json()
        if run["status"] in TERMINAL:
            return dict(run)
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['status']} after {timeout} s")
        time.sleep(0.05)


def new_thread(client: httpx.Client, purpose: str) -> dict[str, Any]:
    response = client.post("/v1/threads", json={"assistant": "data-analyst", "purpose": purpose})
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch, local_stack: LocalStack) -> Iterator[Callable[..., None]]:
    """Change the stack's environment for one test (the Lambdas run in this process)."""

    def apply(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        forget_cached_clients()

    yield apply
    monkeypatch.undo()
    forget_cached_clients()


FIELD_HELPER = """\
name: field-helper
description: Answers with the application's weather and the sales database.
instructions: Use the tools.
tools:
  - get_table_schema
  - name: query_database
    approval: required
  - name: get_weather
    runs_on: client
    description: The weather in a city, from the application.
    parameters:
      type: object
      properties:
        city: {type: string}
      required: [city]
database:
  tables: [sales, customers, products]
"""


@pytest.fixture
def helper(tmp_path: Path, configure: Callable[..., None]) -> str:
    """An assistant beside the shipped ones, with a client tool (get_weather) and a tool that needs
    approval (query_database)."""
    folder = tmp_path / "assistants"
    shutil.copytree(ToolSettings().assistants_dir, folder)
    (folder / "field-helper.yaml").write_text(FIELD_HELPER)
    configure(THREADRUNNER_ASSISTANTS_DIR=str(folder))
    return "field-helper"


def start_run(client: httpx.Client, assistant: str, purpose: str, message: str = "go") -> str:
    """A run of ``assistant`` on the caller's thread for ``purpose``; its id."""
    thread = client.post("/v1/threads", json={"assistant": assistant, "purpose": purpose})
    assert thread.status_code in (200, 201), thread.text
    run = client.post(f"/v1/threads/{thread.json()['id']}/runs", json={"message": message})
    assert run.status_code == 202, run.text
    return str(run.json()["id"])


def wait_for_action(client: httpx.Client, run_id: str, timeout: float = 30) -> dict[str, Any]:
    """The run once it waits for the application (requires_action); fails if it ends first."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/v1/runs/{run_id}").json()
        if run["status"] == "requires_action" and run.get("required_action"):
            return dict(run)
        assert run["status"] not in ("completed", "failed", "cancelled", "timed_out"), run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']}"
        time.sleep(0.05)
