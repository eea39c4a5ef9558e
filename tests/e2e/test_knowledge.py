"""Documents an assistant knows, and a thread's own documents (file_search), as a client sees them: the
knowledge sync at the local stack's start (idempotent), answers that cite the document, thread documents in
a store of the thread's that goes with it, the chat engine refusing them, and a fallback that says it
answered without search. Every exchange with the emulator is checked against the OpenAI description."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from threadrunner.settings import RunSettings, UpstreamSettings
from threadrunner.stores.breakers import CircuitBreakerStore
from threadrunner.stores.knowledge import KnowledgeStore

from local.cli_knowledge import sync_local
from local.emulator import EmulatorServer, Plan
from local.stack import REGION, LocalStack
from tests.e2e.conftest import wait_for_run
from tests.support.lifecycle import table
from tests.support.uploads import declare_file, post_upload, wait_until_settled

QUESTION = "How many days of paid holiday do employees have?"


def synced(local_stack: LocalStack, upstream: EmulatorServer) -> None:
    """What the stack's start does (the emulator was reset since: its stores are made again)."""
    sync_local(
        upstream_base_url=upstream.base_url,
        api_key="sk-test-e2e",
        runs_table=boto3.resource("dynamodb", region_name=REGION).Table(local_stack.table_names["runs"]),
        s3=local_stack.client("s3"),
    )


@pytest.fixture
def knowledge(local_stack: LocalStack, upstream: EmulatorServer) -> Iterator[None]:
    synced(local_stack, upstream)
    yield


def handbook_thread(client: httpx.Client, purpose: str = "policy") -> dict[str, Any]:
    response = client.post("/v1/threads", json={"assistant": "handbook", "purpose": purpose})
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def uploads(upstream: EmulatorServer) -> list[Any]:
    return [e for e in upstream.exchanges if e.method == "POST" and e.path == "/v1/files"]


def test_a_second_sync_uploads_nothing(
    local_stack: LocalStack, upstream: EmulatorServer, knowledge: None
) -> None:
    # Given the handbook synced (once, by the fixture)
    assert len(uploads(upstream)) == 1
    # When synced again, Then nothing goes upstream but a look at the store
    before = len(upstream.exchanges)
    synced(local_stack, upstream)
    assert [e.method for e in upstream.exchanges[before:]] == ["GET"]


def test_a_run_answers_from_the_handbook_with_a_file_citation_kept_in_the_log(
    alice: httpx.Client, upstream: EmulatorServer, knowledge: None, local_stack: LocalStack
) -> None:
    # Given the handbook assistant, its document synced
    thread = handbook_thread(alice)
    # When asked about a policy
    created = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": QUESTION}).json()
    run = wait_for_run(alice, created["id"])
    # Then the answer cites the handbook, with the passage it took
    assert run["status"] == "completed", run
    assert run["degraded"] == []
    [citation] = [c for c in run["citations"] if c["type"] == "file"]
    assert citation["filename"] == "handbook.md" and citation["file_id"].startswith("file")
    assert "28 days of paid holiday" in (citation["quote"] or "")
    # and the request searched the assistant's store
    record = KnowledgeStore(table(local_stack.table_names, "runs")).get("local", "responses", "handbook")
    assert record is not None
    creates = [e for e in upstream.exchanges if e.method == "POST" and e.path.endswith("/responses")]
    tools = creates[-1].request_json["tools"]
    assert {"type": "file_search", "vector_store_ids": [record.vector_store_id]} in tools
    # and the message log keeps the citation with the answer
    messages = alice.get(f"/v1/threads/{thread['id']}/messages").json()["messages"]
    assert messages[-1]["role"] == "assistant" and messages[-1]["citations"] == run["citations"]


def test_a_thread_document_is_searched_and_goes_with_the_thread(
    alice: httpx.Client, upstream: EmulatorServer, knowledge: None
) -> None:
    # Given a thread document (purpose file_search)
    thread = handbook_thread(alice, "own-documents")
    data = b"# Parking\n\nEvery employee may park in garage B; the parking badge costs 12 euros a month.\n"
    declared = declare_file(
        alice, thread["id"], data, content_type="text/markdown", filename="parking.md", purpose="file_search"
    )
    assert declared.status_code == 201, declared.text
    assert post_upload(declared.json(), data, "text/markdown").status_code == 204
    assert wait_until_settled(alice, declared.json()["id"])["status"] == "ready"
    stores = [e for e in upstream.exchanges if e.method == "POST" and e.path.endswith("/vector_stores")]
    thread_store = stores[-1].response_json
    assert thread_store["expires_after"]["anchor"] == "last_active_at"
    # When asked about it
    created = alice.post(
        f"/v1/threads/{thread['id']}/runs", json={"message": "How much does the parking badge cost?"}
    ).json()
    run = wait_for_run(alice, created["id"])
    # Then the answer cites the thread's document
    assert run["status"] == "completed", run
    assert "parking.md" in {c["filename"] for c in run["citations"]}
    # When the thread is deleted, Then its store goes upstream too
    assert alice.delete(f"/v1/threads/{thread['id']}").status_code == 202
    deleted = {e.path for e in upstream.exchanges if e.method == "DELETE"}
    assert any(path.endswith(f"/vector_stores/{thread_store['id']}") for path in deleted), deleted


def test_a_thread_document_on_the_chat_engine_or_of_an_unsearchable_type_is_a_422(
    alice: httpx.Client, upstream: EmulatorServer, configure: Callable[..., None]
) -> None:
    thread = handbook_thread(alice, "csv")
    refused = declare_file(alice, thread["id"], b"a,b\n1,2\n", purpose="file_search")
    assert refused.status_code == 422 and refused.json()["field"] == "content_type"
    configure(THREADRUNNER_ENGINE="chat")
    chat_thread = handbook_thread(alice, "chat")
    refused = declare_file(
        alice, chat_thread["id"], b"text", content_type="text/plain", purpose="file_search"
    )
    assert refused.status_code == 422, refused.text
    assert "has no retrieval store" in refused.json()["message"]


def test_a_fallback_to_chat_answers_without_search_and_says_so(
    alice: httpx.Client,
    upstream: EmulatorServer,
    knowledge: None,
    configure: Callable[..., None],
    local_stack: LocalStack,
) -> None:
    # Given chat as the fallback, and the Responses API rate-limiting every create
    configure(
        THREADRUNNER_FALLBACK_ENGINE="chat",
        THREADRUNNER_RETRY_BASE_SECONDS="0.01",
        THREADRUNNER_RETRY_MAX_BACKOFF_SECONDS="0.02",
    )
    breakers = CircuitBreakerStore(table(local_stack.table_names, "runs"))
    thread = handbook_thread(alice, "fallback")
    upstream.script(
        Plan.http_error(
            429,
            "rate_limit_exceeded",
            on="create",
            times=UpstreamSettings().retry_max_attempts,
            retry_after_ms=10,
        ),
        Plan.message("Without the handbook, I cannot say."),
    )
    try:
        created = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": QUESTION}).json()
        run = wait_for_run(alice, created["id"])
    finally:
        breakers.close(RunSettings().environment, "responses")
    # Then chat answered, without search, and the run says so
    assert run["status"] == "completed", run
    assert (run["engine"], run["fallback_from"]) == ("chat", "responses")
    assert run["degraded"] == ["file_search"]
    assert [c for c in run["citations"] if c["type"] == "file"] == []


def test_on_the_assistants_engine_the_assistant_holds_its_documents_and_the_thread_its_own(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack, configure: Callable[..., None]
) -> None:
    # Given an environment on the assistants engine, the handbook synced to its server's vector stores
    configure(THREADRUNNER_ENGINE="assistants")
    synced(local_stack, upstream)
    record = KnowledgeStore(table(local_stack.table_names, "runs")).get("local", "assistants", "handbook")
    assert record is not None
    # and a thread with a document of its own
    thread = handbook_thread(alice, "assistants-engine")
    data = b"# Parking\n\nEvery employee may park in garage B; the parking badge costs 12 euros a month.\n"
    declared = declare_file(
        alice, thread["id"], data, content_type="text/markdown", filename="parking.md", purpose="file_search"
    )
    assert declared.status_code == 201, declared.text
    assert post_upload(declared.json(), data, "text/markdown").status_code == 204
    assert wait_until_settled(alice, declared.json()["id"])["status"] == "ready"
    thread_store = [e for e in upstream.exchanges if e.method == "POST" and e.path == "/v1/vector_stores"][-1]
    # When asked about a policy, then about parking
    answers = []
    for question in (QUESTION, "How much does the parking badge cost?"):
        created = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": question}).json()
        answers.append(wait_for_run(alice, created["id"]))
    # Then each answer cites the document it came from
    assert [run["status"] for run in answers] == ["completed", "completed"], answers
    assert answers[0]["engine"] == "assistants" and answers[0]["degraded"] == []
    assert "handbook.md" in {c["filename"] for c in answers[0]["citations"] if c["type"] == "file"}
    assert "parking.md" in {c["filename"] for c in answers[1]["citations"] if c["type"] == "file"}
    # and the upstream assistant holds the handbook's store, the upstream thread the thread's store
    assistant = [e for e in upstream.exchanges if e.method == "POST" and e.path.startswith("/v1/assistants")][
        -1
    ]
    assert assistant.request_json["tool_resources"] == {
        "file_search": {"vector_store_ids": [record.vector_store_id]}
    }
    assert {"type": "file_search"} in assistant.request_json["tools"]
    threads = [e for e in upstream.exchanges if e.method == "POST" and e.path.count("/") == 3]
    thread_updates = [
        e for e in threads if e.path.startswith("/v1/threads/") and e.request_json.get("tool_resources")
    ]
    assert thread_updates[-1].request_json["tool_resources"] == {
        "file_search": {"vector_store_ids": [thread_store.response_json["id"]]}
    }
    runs = [e for e in upstream.exchanges if e.method == "POST" and e.path.endswith("/runs")]
    assert {"type": "file_search"} in runs[-1].request_json["tools"]
