"""VectorStoreUpstream (engines/vector_stores.py) on an OpenAI(-compatible) client: the Vector Stores API."""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any, BinaryIO

import openai
from openai import OpenAI

from threadrunner.engines.errors import upstream_errors
from threadrunner.engines.vector_stores import DocumentRefused

# A vector store file is searchable once indexed: how long attaching one waits for that, and how often it looks.
INDEXING_SECONDS = 120.0
POLL_SECONDS = 1.0
_sleep = time.sleep  # tests replace it


class OpenAIVectorStores:
    """VectorStoreUpstream on an OpenAI(-compatible) client."""

    def __init__(self, client: OpenAI) -> None:
        self._client = client
        self._create_client = client.with_options(max_retries=0)  # creates go out once

    def create_store(self, name: str, metadata: dict[str, str], *, expires_after_days: int | None) -> str:
        extra: dict[str, Any] = {}
        if expires_after_days is not None:
            extra["expires_after"] = {"anchor": "last_active_at", "days": expires_after_days}
        with upstream_errors(creating=True):
            return self._create_client.vector_stores.create(name=name, metadata=metadata, **extra).id

    def store_exists(self, vector_store_id: str) -> bool:
        with upstream_errors():
            try:
                store = self._client.vector_stores.retrieve(vector_store_id)
            except openai.NotFoundError:
                return False
        return store.status != "expired"

    def delete_store(self, vector_store_id: str) -> None:
        with upstream_errors(), suppress(openai.NotFoundError):
            self._client.vector_stores.delete(vector_store_id)

    def upload(self, filename: str, stream: BinaryIO, content_type: str) -> str:
        with upstream_errors(creating=True):
            return self._create_client.files.create(
                file=(filename, stream, content_type), purpose="assistants"
            ).id

    def attach(self, vector_store_id: str, file_id: str) -> None:
        with upstream_errors():
            attached = self._client.vector_stores.files.create(vector_store_id, file_id=file_id)
            deadline = time.monotonic() + INDEXING_SECONDS
            while attached.status == "in_progress" and time.monotonic() < deadline:
                _sleep(POLL_SECONDS)
                attached = self._client.vector_stores.files.retrieve(file_id, vector_store_id=vector_store_id)
        if attached.status in ("failed", "cancelled"):
            error = attached.last_error
            reason = f"{error.code}: {error.message}" if error is not None else f"indexing {attached.status}"
            raise DocumentRefused(f"the upstream could not index the file: {reason}")
        # Still in_progress after INDEXING_SECONDS: the upstream finishes it; searches find it once done.

    def detach(self, vector_store_id: str, file_id: str) -> None:
        with upstream_errors(), suppress(openai.NotFoundError):
            self._client.vector_stores.files.delete(file_id, vector_store_id=vector_store_id)

    def delete_file(self, file_id: str) -> None:
        with upstream_errors(), suppress(openai.NotFoundError):
            self._client.files.delete(file_id)
