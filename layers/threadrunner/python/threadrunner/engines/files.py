"""The upstream Files API and container files, shared by the engines that keep files upstream."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import TYPE_CHECKING, Any, BinaryIO

import openai
from openai import OpenAI

from threadrunner.engines.base import GeneratedFile
from threadrunner.engines.errors import upstream_errors

if TYPE_CHECKING:
    from threadrunner.engines.openai_vector_stores import OpenAIVectorStores

CHUNK_BYTES = 1024 * 1024
# Shortest and longest expiry the Files API accepts (expires_after.seconds).
_MIN_EXPIRY, _MAX_EXPIRY = 3600, 30 * 24 * 3600


class UpstreamFiles:
    def __init__(self, client: OpenAI, purpose: str) -> None:
        self._client = client
        self._create_client = client.with_options(max_retries=0)  # an upload goes out once
        self._purpose = purpose

    @property
    def client(self) -> OpenAI:
        return self._client

    def upload(self, filename: str, stream: BinaryIO, content_type: str, expires_seconds: int) -> str:
        extra: dict[str, Any] = {}
        if expires_seconds:
            seconds = min(max(expires_seconds, _MIN_EXPIRY), _MAX_EXPIRY)
            extra["expires_after"] = {"anchor": "created_at", "seconds": seconds}
        with upstream_errors(creating=True):
            created = self._create_client.files.create(
                file=(filename, stream, content_type),
                purpose=self._purpose,  # type: ignore[arg-type]
                **extra,
            )
        return created.id

    def delete(self, upstream_file_id: str) -> None:
        with upstream_errors(), suppress(openai.NotFoundError):
            self._client.files.delete(upstream_file_id)

    @contextmanager
    def download(self, file: GeneratedFile) -> Iterator[Iterator[bytes]]:
        with upstream_errors():
            if file.container_id is not None:
                opened = self._client.containers.files.content.with_streaming_response.retrieve(
                    file.file_id, container_id=file.container_id
                )
            else:
                opened = self._client.files.with_streaming_response.content(file.file_id)
            with opened as response:
                yield response.iter_bytes(CHUNK_BYTES)


class FilesUpstream:
    """The FileEngine methods of an engine that keeps its files upstream (its ``_files``)."""

    _files: UpstreamFiles

    def upload_file(self, filename: str, stream: BinaryIO, content_type: str, expires_seconds: int) -> str:
        return self._files.upload(filename, stream, content_type, expires_seconds)

    def delete_file(self, upstream_file_id: str) -> None:
        self._files.delete(upstream_file_id)

    def download(self, file: GeneratedFile) -> AbstractContextManager[Iterator[bytes]]:
        return self._files.download(file)

    def vector_stores(self) -> OpenAIVectorStores:
        """The retrieval store on this engine's upstream (engines/vector_stores.py)."""
        from threadrunner.engines.openai_vector_stores import OpenAIVectorStores

        return OpenAIVectorStores(self._files.client)
