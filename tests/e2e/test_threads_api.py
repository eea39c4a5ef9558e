"""Threads over HTTP: get-or-create, ownership, validation."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import httpx
from threadrunner.settings import FileSettings, RunSettings, ToolSettings

from local.emulator import EmulatorServer
from tests.e2e.conftest import new_thread


def test_get_or_create_returns_the_same_thread_for_the_same_purpose(alice: httpx.Client) -> None:
    # Given a new purpose
    first = alice.post("/v1/threads", json={"assistant": "data-analyst", "purpose": "q3-review"})
    # When the same caller asks again
    again = alice.post("/v1/threads", json={"assistant": "data-analyst", "purpose": "q3-review"})
    other = alice.post("/v1/threads", json={"assistant": "data-analyst", "purpose": "budget"})
    # Then the first call created it and the second returned it
    assert first.status_code == 201, first.text
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    body = first.json()
    assert set(body) == {
        "id",
        "assistant",
        "purpose",
        "created_at",
        "last_activity_at",
        "expires_at",
        "active_run_id",
        "queued_run_ids",
    }
    assert body["assistant"] == "data-analyst" and body["purpose"] == "q3-review"
    assert alice.get(f"/v1/threads/{body['id']}").json()["id"] == body["id"]


def test_another_users_thread_is_not_found(
    alice: httpx.Client, client_for: Callable[[str], httpx.Client]
) -> None:
    thread = new_thread(alice, "private")
    bob = client_for("bob")
    assert bob.get(f"/v1/threads/{thread['id']}").status_code == 404
    response = bob.post(f"/v1/threads/{thread['id']}/runs", json={"message": "hello"})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    # and bob's own thread for the same key is a different thread
    assert new_thread(bob, "private")["id"] != thread["id"]


def test_bad_input_is_a_422_naming_the_field(alice: httpx.Client) -> None:
    cases = [
        ({"purpose": "x"}, "assistant"),
        ({"assistant": "data-analyst", "purpose": "x", "user_id": "mallory"}, "user_id"),
        ({"assistant": "Data Analyst!", "purpose": "x"}, "assistant"),
        ({"assistant": "no-such-assistant", "purpose": "x"}, "assistant"),
        ({"assistant": "data-analyst", "purpose": "x" * 101}, "purpose"),
    ]
    for body, field in cases:
        response = alice.post("/v1/threads", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field, (body, response.json())
    thread = new_thread(alice, "validation")
    for body, field in [
        ({}, "message"),
        ({"message": ""}, "message"),
        ({"message": "hi", "extra": 1}, "extra"),
    ]:
        response = alice.post(f"/v1/threads/{thread['id']}/runs", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field
    not_json = alice.post("/v1/threads", content=b"{not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 422
    assert alice.get("/v1/runs/not-a-run-id").status_code == 422


def test_requests_without_a_valid_token_are_refused(local_stack, upstream) -> None:  # type: ignore[no-untyped-def]
    anonymous = httpx.post(f"{local_stack.api_url}/v1/threads", json={"assistant": "data-analyst"})
    assert anonymous.status_code == 401
    forged = httpx.post(
        f"{local_stack.api_url}/v1/threads",
        json={"assistant": "data-analyst"},
        headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."},
    )
    assert forged.status_code == 401


def test_openapi_document_is_served(alice: httpx.Client) -> None:
    document = alice.get("/v1/openapi.json").json()
    assert "/v1/threads" in document["paths"] and "/v1/runs/{run_id}" in document["paths"]
    assert {"/v1/usage", "/v1/admin/runs", "/v1/admin/users/{user_id}/runs/cancel"} <= set(document["paths"])
    create_run = document["paths"]["/v1/threads/{thread_id}/runs"]["post"]["responses"]
    assert "429" in create_run and "RunOut" in str(create_run)


def test_a_page_of_threads_goes_on_after_a_thread_id(
    client_for: Callable[[str], httpx.Client], upstream: EmulatorServer
) -> None:
    # Given a user's three threads
    client = client_for(f"pager-{uuid.uuid4().hex[:8]}")
    newest_first = [new_thread(client, f"page-{i}")["id"] for i in range(3)][::-1]
    # When they are read a page at a time
    pages, after = [], None
    while True:
        page = client.get("/v1/threads", params={"limit": 1, **({"after": after} if after else {})}).json()
        pages += [thread["id"] for thread in page["threads"]]
        if page["next"] is None:
            break
        after = page["next"]
        # Then the cursor is the last thread's id: a position the document's pattern describes whole
        assert after == pages[-1] and re.fullmatch(r"thr_[0-9a-z]{26}", after)
    assert pages == newest_first
    # and any id-shaped position is a place to go on from (none is refused), anything else is a 422
    assert (
        client.get("/v1/threads", params={"after": "thr_" + "z" * 26}).json()["threads"][0]["id"] == pages[0]
    )
    assert client.get("/v1/threads", params={"after": "thr_" + "0" * 26}).json() == {
        "threads": [],
        "next": None,
    }
    refused = client.get("/v1/threads", params={"after": "dGhyXzAx"})  # a cursor of the old, opaque kind
    assert refused.status_code == 422 and refused.json()["field"] == "after"


def test_the_document_states_what_this_deployment_takes(alice: httpx.Client) -> None:
    document = alice.get("/v1/openapi.json").json()
    schemas = document["components"]["schemas"]
    files, runs = FileSettings(), RunSettings()
    assistants = sorted(path.stem for path in ToolSettings().assistants_dir.glob("*.yaml"))

    # what the models cannot know: the deployment's assistants, file types and sizes, message length
    assert schemas["CreateThreadRequest"]["properties"]["assistant"]["enum"] == assistants
    assert "data-analyst" in assistants
    assert schemas["CreateFileRequest"]["properties"]["content_type"]["enum"] == files.allowed_file_types
    assert schemas["CreateFileRequest"]["properties"]["size_bytes"]["maximum"] == files.max_file_bytes
    assert schemas["CreateRunRequest"]["properties"]["message"]["maxLength"] == runs.max_message_chars
    assert schemas["CreateRunRequest"]["properties"]["file_ids"]["maxItems"] == files.max_files_per_run
    # every route answers 401, 422 and 429, and one that reads a body 415; the JWT is the security scheme
    for path, item in document["paths"].items():
        for method, operation in item.items():
            expected = {"401", "422", "429"} | ({"415"} if "requestBody" in operation else set())
            assert expected <= set(operation["responses"]), (method, path)
    assert document["security"] == [{"jwt": []}]
    assert document["components"]["securitySchemes"]["jwt"]["scheme"].lower() == "bearer"
