"""The local stack and the assistants' definitions: a bad one stops the start (file, line and key named), and
an edited one is read on the next request, without a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from threadrunner.assistant_validation import AssistantDefinitionError
from threadrunner.stores.threads import ThreadStore

from local.auth import issue_token
from local.stack import LocalStack

pytestmark = pytest.mark.xdist_group("local_stack")  # moto is process-global: one stack at a time

DEFINITION = "name: helper\ninstructions: Answer briefly.\nengine: {engine}\ntools: [query_database]\n"


def make_stack(assistants_dir: Path) -> LocalStack:
    # No run starts here: threads need no upstream.
    return LocalStack(
        upstream_base_url="http://127.0.0.1:9/v1",
        api_key="sk-assistants",
        overrides={"THREADRUNNER_ASSISTANTS_DIR": str(assistants_dir)},
    )


def test_a_bad_definition_stops_the_start_naming_file_line_and_key(tmp_path: Path) -> None:
    # Given an assistants folder with a typo'd tool and an unknown key
    (tmp_path / "helper.yaml").write_text(
        "name: helper\ninstructions: x\ntools:\n  - query_databse\ntemprature: 0\n"
    )
    stack = make_stack(tmp_path)

    # When the stack starts, Then it refuses with every problem, before serving anything
    with pytest.raises(AssistantDefinitionError) as raised:
        stack.start()
    message = str(raised.value)
    assert "helper.yaml:4: tools[0]: unknown tool 'query_databse'; did you mean 'query_database'?" in message
    assert "helper.yaml:5: temprature: unknown key 'temprature'" in message
    assert stack._running is None

    # And once the file is fixed the same stack starts (the failed start left nothing claimed)
    (tmp_path / "helper.yaml").write_text(DEFINITION.format(engine="chat"))
    with stack:
        token = {"Authorization": f"Bearer {issue_token('alice')}"}
        answer = httpx.get(f"{stack.api_url}/v1/openapi.json", headers=token, timeout=10)
        assert answer.status_code == 200


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[LocalStack, httpx.Client]]:
    with (
        make_stack(tmp_path) as stack,
        httpx.Client(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {issue_token('alice')}"}, timeout=30
        ) as client,
    ):
        yield stack, client


def engine_of(stack: LocalStack, thread_id: str) -> str:
    """The engine the thread was created with (kept on its record; the API does not show it)."""
    table = boto3.resource("dynamodb", region_name=stack.region).Table(stack.table_names["threads"])
    return str(ThreadStore(table).get("alice", thread_id).engine)


def listed_assistants(client: httpx.Client) -> list[str]:
    document = client.get("/v1/openapi.json").json()
    return list(document["components"]["schemas"]["CreateThreadRequest"]["properties"]["assistant"]["enum"])


def test_a_definition_added_or_changed_is_used_on_the_next_request(
    tmp_path: Path, running: tuple[LocalStack, httpx.Client]
) -> None:
    stack, alice = running

    # Given a running stack with no "helper": creating its thread is a 422 naming the field
    missing = alice.post("/v1/threads", json={"assistant": "helper", "purpose": "one"})
    assert missing.status_code == 422, missing.text
    assert missing.json()["field"] == "assistant"
    assert "helper" not in listed_assistants(alice)

    # When the definition is added, Then the next request finds it
    path = tmp_path / "helper.yaml"
    path.write_text(DEFINITION.format(engine="chat"))
    first = alice.post("/v1/threads", json={"assistant": "helper", "purpose": "one"})
    assert first.status_code == 201, first.text
    assert engine_of(stack, first.json()["id"]) == "chat"
    assert "helper" in listed_assistants(alice)  # the document's enum says what the API takes

    # When it is edited, Then a new thread gets the new engine, with no restart
    path.write_text(DEFINITION.format(engine="responses"))
    second = alice.post("/v1/threads", json={"assistant": "helper", "purpose": "two"})
    assert second.status_code == 201, second.text
    assert engine_of(stack, second.json()["id"]) == "responses"
