"""The emulator's vector stores through the real openai SDK: CRUD, files, keyword search and expiry (every
exchange checked against the OpenAI contract by the ``emulator`` fixture)."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from local.emulator import EmulatorServer

REFUNDS = b"Refund policy\n\nCustomers may return any item within 30 days for a full refund to their card."
SHIPPING = b"Shipping\n\nOrders ship within two business days. International shipping takes ten days."


def upload(client: OpenAI, name: str, data: bytes, purpose: str = "assistants") -> str:
    return client.files.create(file=(name, data), purpose=purpose).id  # type: ignore[arg-type]


def test_a_store_is_created_read_updated_listed_and_deleted(openai_client: OpenAI) -> None:
    # Given a store with a name, metadata and an expiry policy
    store = openai_client.vector_stores.create(
        name="Support FAQ",
        metadata={"team": "support"},
        expires_after={"anchor": "last_active_at", "days": 7},
    )
    assert (store.object, store.status, store.name, store.metadata) == (
        "vector_store",
        "completed",
        "Support FAQ",
        {"team": "support"},
    )
    assert store.expires_after is not None and store.expires_after.days == 7
    assert store.last_active_at is not None
    assert store.expires_at == store.last_active_at + 7 * 86_400

    # When it is renamed, listed and deleted
    renamed = openai_client.vector_stores.update(store.id, name="FAQ v2", expires_after=None)
    other = openai_client.vector_stores.create(name="Other")
    listed = openai_client.vector_stores.list(order="asc")
    deleted = openai_client.vector_stores.delete(store.id)

    # Then each answer says so, and the deleted store is gone
    assert (renamed.name, renamed.expires_at) == ("FAQ v2", None)
    assert [s.id for s in listed.data] == [store.id, other.id]
    assert (deleted.id, deleted.deleted, deleted.object) == (store.id, True, "vector_store.deleted")
    with pytest.raises(openai.NotFoundError):
        openai_client.vector_stores.retrieve(store.id)
    assert [s.id for s in openai_client.vector_stores.list().data] == [other.id]


def test_files_are_attached_listed_read_and_detached(openai_client: OpenAI) -> None:
    refunds = upload(openai_client, "refunds.md", REFUNDS)
    shipping = upload(openai_client, "shipping.md", SHIPPING, purpose="user_data")
    store = openai_client.vector_stores.create(name="Docs", file_ids=[refunds])

    attached = openai_client.vector_stores.files.create(
        vector_store_id=store.id, file_id=shipping, attributes={"topic": "shipping", "version": 2}
    )

    assert (attached.id, attached.status, attached.vector_store_id) == (shipping, "completed", store.id)
    assert attached.attributes == {"topic": "shipping", "version": 2}
    assert attached.usage_bytes == len(SHIPPING)
    assert {f.id for f in openai_client.vector_stores.files.list(store.id).data} == {refunds, shipping}
    got = openai_client.vector_stores.files.retrieve(file_id=refunds, vector_store_id=store.id)
    assert got.usage_bytes == len(REFUNDS)
    counted = openai_client.vector_stores.retrieve(store.id)
    assert (counted.file_counts.completed, counted.file_counts.total) == (2, 2)
    assert counted.usage_bytes == len(REFUNDS) + len(SHIPPING)

    detached = openai_client.vector_stores.files.delete(file_id=refunds, vector_store_id=store.id)
    assert (detached.deleted, detached.object) == (True, "vector_store.file.deleted")
    assert [f.id for f in openai_client.vector_stores.files.list(store.id).data] == [shipping]
    assert openai_client.files.retrieve(refunds).id == refunds  # detaching keeps the file itself
    with pytest.raises(openai.NotFoundError):
        openai_client.vector_stores.files.retrieve(file_id=refunds, vector_store_id=store.id)


def test_only_existing_files_with_a_searchable_purpose_can_be_attached(openai_client: OpenAI) -> None:
    store = openai_client.vector_stores.create(name="Docs")
    batch = upload(openai_client, "batch.jsonl", b"{}", purpose="batch")

    with pytest.raises(openai.BadRequestError, match="purpose"):
        openai_client.vector_stores.files.create(vector_store_id=store.id, file_id=batch)
    with pytest.raises(openai.BadRequestError, match="not found"):
        openai_client.vector_stores.files.create(vector_store_id=store.id, file_id="file-missing")


def test_search_ranks_chunks_by_shared_key_words(openai_client: OpenAI) -> None:
    refunds = upload(openai_client, "refunds.md", REFUNDS)
    shipping = upload(openai_client, "shipping.md", SHIPPING)
    store = openai_client.vector_stores.create(name="Docs", file_ids=[shipping, refunds])

    page = openai_client.vector_stores.search(store.id, query="How many days for a refund?")
    results = list(page)

    # The refund paragraph shares both key words ("days", "refund"); the shipping paragraph and the refund
    # heading one each, in the order the files were attached; the shipping heading none
    assert [(r.filename, r.content[0].text, r.score) for r in results] == [
        ("refunds.md", REFUNDS.decode().split("\n\n")[1], 1.0),
        ("shipping.md", SHIPPING.decode().split("\n\n")[1], 0.5),
        ("refunds.md", "Refund policy", 0.5),
    ]
    assert all(0 <= r.score <= 1 for r in results)
    assert results[0].file_id == refunds
    top = list(openai_client.vector_stores.search(store.id, query="refund days", max_num_results=1))
    assert [r.file_id for r in top] == [refunds]
    assert list(openai_client.vector_stores.search(store.id, query="weather in Paris")) == []


def test_a_store_expires_after_its_days_without_activity(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    # Given a store that expires one day after its last activity, and one that never expires
    refunds = upload(openai_client, "refunds.md", REFUNDS)
    expiring = openai_client.vector_stores.create(
        name="Short-lived", file_ids=[refunds], expires_after={"anchor": "last_active_at", "days": 1}
    )
    lasting = openai_client.vector_stores.create(name="Lasting", file_ids=[refunds])

    # When 20 hours pass, a search renews it; 20 more hours are within a day of that search
    emulator.advance_vector_store_clock(seconds=20 * 3600)
    assert list(openai_client.vector_stores.search(expiring.id, query="refund"))
    emulator.advance_vector_store_clock(seconds=20 * 3600)
    assert openai_client.vector_stores.retrieve(expiring.id).status == "completed"

    # Then a day without activity expires it: it says so and refuses searches
    emulator.advance_vector_store_clock(days=1)
    assert openai_client.vector_stores.retrieve(expiring.id).status == "expired"
    assert openai_client.vector_stores.retrieve(lasting.id).status == "completed"
    with pytest.raises(openai.BadRequestError, match="expired"):
        openai_client.vector_stores.search(expiring.id, query="refund")
