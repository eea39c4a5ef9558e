"""Protocol edges (raw HTTP), robustness, and the contract checker itself: it must catch contract breaks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from openai import OpenAI

from local.emulator import EmulatorServer, Exchange
from local.emulator.conversations import ConversationStore
from tests.support.openai_contract import validate_exchange


@pytest.fixture
def http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.base_url, headers={"Authorization": "Bearer sk-test"}) as client:
        yield client


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def test_unknown_route_is_a_404_in_the_error_shape(http: httpx.Client) -> None:
    response = http.get("/assistants-v9")
    assert response.status_code == 404
    assert error_of(response)["message"] == "Invalid URL (GET /v1/assistants-v9)"


def test_wrong_method_is_an_invalid_url_too(http: httpx.Client) -> None:
    response = http.put("/responses")
    assert response.status_code == 404


def test_bad_json_is_a_400(http: httpx.Client) -> None:
    response = http.post("/responses", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "could not parse the JSON body" in str(error_of(response)["message"])


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "hi"}, "model", "missing_required_parameter"),
        ({"model": "m", "input": 5}, "input", "invalid_type"),
        (
            {"model": "m", "input": [{"type": "function_call_output", "output": "{}"}]},
            "input[0].call_id",
            None,
        ),
        ({"model": "m", "input": [{"type": "telepathy"}]}, "input[0].type", "invalid_value"),
        ({"model": "m", "tools": [{"type": "function", "parameters": {}}]}, "tools[0].name", None),
        ({"model": "m", "conversation": "conv_missing"}, "conversation", None),
    ],
)
def test_invalid_requests_name_the_parameter(
    http: httpx.Client, body: dict[str, object], param: str, code: str | None
) -> None:
    response = http.post("/responses", json=body)
    assert response.status_code in (400, 404)
    error = error_of(response)
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code


def test_conversation_and_previous_response_are_exclusive(http: httpx.Client) -> None:
    conversation = http.post("/conversations", json={}).json()
    first = http.post("/responses", json={"model": "m", "input": "hi"}).json()
    both = http.post(
        "/responses",
        json={
            "model": "m",
            "input": "hi",
            "conversation": {"id": conversation["id"]},
            "previous_response_id": first["id"],
        },
    )
    assert (both.status_code, error_of(both)["param"]) == (400, "conversation")


def test_file_upload_needs_a_file_and_a_known_purpose(http: httpx.Client) -> None:
    no_file = http.post("/files", data={"purpose": "assistants"})
    assert error_of(no_file)["param"] == "file"
    bad_purpose = http.post("/files", files={"file": ("a.txt", b"x")}, data={"purpose": "memes"})
    assert error_of(bad_purpose)["param"] == "purpose"


# The checker: a contract test that cannot fail proves nothing, so break real exchanges on purpose.
@pytest.fixture
def good_create(openai_client: OpenAI, emulator: EmulatorServer) -> Exchange:
    openai_client.responses.create(model="gpt-4.1-mini", input="hi")
    [exchange] = emulator.exchanges
    validate_exchange(exchange)
    return exchange


def test_checker_catches_a_response_missing_a_required_field(good_create: Exchange) -> None:
    body = json.loads(good_create.response_body)
    del body["output"][0]["content"][0]["annotations"]
    broken = good_create.model_copy(update={"response_body": json.dumps(body).encode()})
    with pytest.raises(AssertionError, match="response"):
        validate_exchange(broken)


def test_checker_catches_a_wrong_status_value(good_create: Exchange) -> None:
    body = json.loads(good_create.response_body) | {"status": "requires_action"}
    broken = good_create.model_copy(update={"response_body": json.dumps(body).encode()})
    with pytest.raises(AssertionError, match="requires_action"):
        validate_exchange(broken)


def test_checker_catches_a_bad_request(good_create: Exchange) -> None:
    body = json.loads(good_create.request_body) | {
        "tools": [{"type": "function", "name": "f"}]
    }  # no strict/parameters
    broken = good_create.model_copy(update={"request_body": json.dumps(body).encode()})
    with pytest.raises(AssertionError, match="request"):
        validate_exchange(broken)


def test_checker_catches_a_request_without_credentials(good_create: Exchange) -> None:
    headers = {name: value for name, value in good_create.request_headers.items() if name != "authorization"}
    with pytest.raises(AssertionError, match="request"):
        validate_exchange(good_create.model_copy(update={"request_headers": headers}))


def test_checker_catches_an_error_body_of_the_wrong_shape(good_create: Exchange) -> None:
    broken = good_create.model_copy(update={"status": 500, "response_body": b'{"detail": "oops"}'})
    with pytest.raises(AssertionError, match="response"):
        validate_exchange(broken)


def test_an_emulator_bug_answers_500_and_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(self: ConversationStore, data: object) -> dict[str, object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(ConversationStore, "create", crash)
    with EmulatorServer() as server:  # its own server: the shared one must stay free of internal errors
        client = OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        with pytest.raises(openai.InternalServerError):
            client.conversations.create()
        assert server.internal_errors == ["POST /v1/conversations: RuntimeError('boom')"]
        validate_exchange(server.exchanges[0])  # even a crash answers in the error shape


def test_concurrent_clients_are_served_consistently(openai_client: OpenAI) -> None:
    conversation = openai_client.conversations.create()

    def add(index: int) -> None:
        openai_client.conversations.items.create(
            conversation.id, items=[{"type": "message", "role": "user", "content": f"message {index}"}]
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(add, range(40)))
    items = openai_client.conversations.items.list(conversation.id, limit=100).data
    assert sorted(item.model_dump()["content"][0]["text"] for item in items) == sorted(
        f"message {index}" for index in range(40)
    )
