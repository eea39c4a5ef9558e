"""A thread's own documents: files of purpose ``file_search`` go into a vector store of the thread's, made
upstream when its first document is staged (with ``expires_after``, like the thread's files), searched by
every run of the thread next to the assistant's knowledge, and deleted with the thread (threadrunner.cleanup:
expiry, DELETE, a user's data deletion). Only engines with a retrieval store take them; the API refuses them
on a chat thread.
"""

from __future__ import annotations

from typing import cast

from threadrunner.engines.base import FileEngine
from threadrunner.engines.vector_stores import RetrievalEngine, VectorStoreUpstream, expiry_days
from threadrunner.errors import UpstreamError
from threadrunner.models.records import FileRecord
from threadrunner.stores.threads import ThreadStore


class ThreadGone(UpstreamError):
    """The thread was deleted while its document was being staged."""


def vector_stores(engine: FileEngine) -> VectorStoreUpstream:
    return cast(RetrievalEngine, engine).vector_stores()


def add_document(
    record: FileRecord,
    upstream_file_id: str,
    engine: FileEngine,
    threads: ThreadStore,
    *,
    expires_seconds: int,
) -> str:
    """Put the staged file in its thread's store (made first if the thread has none); waits until it is
    indexed. Returns the store's id. DocumentRefused when the upstream cannot index it."""
    stores = vector_stores(engine)
    store_id = _thread_store(record, stores, threads, expires_seconds)
    stores.attach(store_id, upstream_file_id)
    return store_id


def remove_document(record: FileRecord, engine: FileEngine, threads: ThreadStore) -> None:
    """DELETE of one document: out of its thread's store (the file itself is deleted by the caller)."""
    thread = threads.find(record.user_id, record.thread_id)
    if record.upstream_file_id and thread is not None and thread.vector_store_id:
        vector_stores(engine).detach(thread.vector_store_id, record.upstream_file_id)


def _thread_store(
    record: FileRecord, stores: VectorStoreUpstream, threads: ThreadStore, expires_seconds: int
) -> str:
    thread = threads.find(record.user_id, record.thread_id)
    if thread is None or thread.deleting_at is not None:
        raise ThreadGone(f"thread {record.thread_id} is gone")
    if thread.vector_store_id:
        return thread.vector_store_id
    created = stores.create_store(
        f"threadrunner-thread-{thread.id}",
        {"threadrunner_thread_id": thread.id},
        expires_after_days=expiry_days(expires_seconds),
    )
    if threads.set_vector_store(thread.user_id, thread.id, created):
        return created
    stores.delete_store(created)  # another document's staging recorded its store first: use that one
    winner = threads.find(record.user_id, record.thread_id)
    if winner is None or winner.vector_store_id is None:
        raise ThreadGone(f"thread {record.thread_id} is gone")
    return winner.vector_store_id
