"""The upstream Vector Stores API: the retrieval store of the engines that have one (responses, assistants).

Used by the knowledge sync (an assistant's documents, threadrunner/knowledge_sync.py), by staging (a thread's
documents, threadrunner/files/thread_documents.py) and by thread cleanup; runs only name the stores
(``file_search`` with ``vector_store_ids``). The OpenAI implementation is engines/openai_vector_stores.py
(this module imports no openai: cleanup and staging import it at INIT).
"""

from __future__ import annotations

import math
from typing import BinaryIO, Protocol

from threadrunner.errors import UpstreamError

_DAY_SECONDS = 86_400


class DocumentRefused(UpstreamError):
    """The upstream could not index the document (its ``last_error``): a bad document, not an outage."""


class VectorStoreUpstream(Protocol):
    """What a retrieval store needs from the upstream; faked in unit tests."""

    def create_store(self, name: str, metadata: dict[str, str], *, expires_after_days: int | None) -> str: ...

    def store_exists(self, vector_store_id: str) -> bool: ...

    def delete_store(self, vector_store_id: str) -> None:
        """One that is already gone is not an error."""
        ...

    def upload(self, filename: str, stream: BinaryIO, content_type: str) -> str:
        """A file for the store (purpose ``assistants``); returns its id."""
        ...

    def attach(self, vector_store_id: str, file_id: str) -> None:
        """Add the file and wait until it is indexed; DocumentRefused when indexing failed."""
        ...

    def detach(self, vector_store_id: str, file_id: str) -> None:
        """Take the file out of the store; one that is not in it is not an error."""
        ...

    def delete_file(self, file_id: str) -> None:
        """One that is already gone is not an error."""
        ...


def expiry_days(seconds: int) -> int | None:
    """A vector store's ``expires_after.days`` for an expiry in seconds (0: none); at least a day."""
    return None if seconds <= 0 else max(1, math.ceil(seconds / _DAY_SECONDS))


class RetrievalEngine(Protocol):
    """Engines with a retrieval store (responses, assistants)."""

    def vector_stores(self) -> VectorStoreUpstream: ...
