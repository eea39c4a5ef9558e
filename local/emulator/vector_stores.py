"""Vector stores: named sets of uploaded files, searched by deterministic keyword scoring.

A file attached to a store is ``completed`` at once: its text (UTF-8, undecodable bytes replaced) is split
into chunks, paragraphs of at most ``CHUNK_WORDS`` words. A search scores each chunk by the share of the
query's key words (``local.emulator.tool_arguments.key_words``: lower-cased, stop words dropped) that the
chunk contains, a number in [0, 1]; chunks that share none are left out, and ties keep the files' attach
order. The same query always finds the same chunks, which is what a test asserting a citation needs.

Expiry follows the real service: a store created or updated with ``expires_after: {"anchor":
"last_active_at", "days": N}`` expires N days after its last activity (creation, an update, a file added, a
search, a response that searched it) and then shows ``status: "expired"`` and refuses searches. The stores
read their own clock, which a test moves forward (``EmulatorServer.advance_vector_store_clock``) instead of
waiting days.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from werkzeug.routing import Rule
from werkzeug.wrappers import Request

from local.emulator.bodies import parse
from local.emulator.errors import invalid_request, not_found
from local.emulator.files import FileStore
from local.emulator.items import new_id
from local.emulator.pages import page
from local.emulator.tool_arguments import key_words

CHUNK_WORDS = 80  # the longest chunk, in words (a paragraph longer than that is cut)
SEARCHABLE_PURPOSES = ("assistants", "user_data")
_DAY = 86_400
# Every route answers through ``VectorStores.answer`` (one hook in the app, as for the webhook endpoints).
VECTOR_STORE_ROUTES = [
    Rule("/v1/vector_stores", methods=["GET", "POST"], endpoint="vector_store_api"),
    Rule(
        "/v1/vector_stores/<vector_store_id>", methods=["GET", "POST", "DELETE"], endpoint="vector_store_api"
    ),
    Rule("/v1/vector_stores/<vector_store_id>/search", methods=["POST"], endpoint="vector_store_search"),
    Rule("/v1/vector_stores/<vector_store_id>/files", methods=["GET", "POST"], endpoint="vector_store_api"),
    Rule(
        "/v1/vector_stores/<vector_store_id>/files/<file_id>",
        methods=["GET", "DELETE"],
        endpoint="vector_store_api",
    ),
]
_STATIC_CHUNKING = {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ExpiresAfter(_Body):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class CreateVectorStoreBody(_Body):
    name: str | None = None
    description: str | None = None
    file_ids: list[str] = Field(default_factory=list, max_length=500)
    expires_after: ExpiresAfter | None = None
    metadata: dict[str, str] | None = None


class UpdateVectorStoreBody(_Body):
    name: str | None = None
    expires_after: ExpiresAfter | None = None
    metadata: dict[str, str] | None = None


class CreateVectorStoreFileBody(_Body):
    file_id: str
    attributes: dict[str, str | float | bool] | None = None


class SearchBody(_Body):
    query: str | list[str]
    max_num_results: int = Field(default=10, ge=1, le=50)


@dataclass(frozen=True)
class Chunk:
    file_id: str
    filename: str
    text: str
    attributes: dict[str, Any] | None


@dataclass(frozen=True)
class SearchHit:
    """One chunk a search found, with its score in [0, 1]."""

    chunk: Chunk
    score: float


@dataclass
class VectorStoreFile:
    file_id: str
    created_at: int
    usage_bytes: int
    attributes: dict[str, Any] | None
    chunks: list[Chunk]


@dataclass
class VectorStore:
    id: str
    created_at: int
    name: str
    metadata: dict[str, str]
    last_active_at: int
    expires_after: ExpiresAfter | None = None
    files: dict[str, VectorStoreFile] = field(default_factory=dict)

    def expires_at(self) -> int | None:
        return None if self.expires_after is None else self.last_active_at + self.expires_after.days * _DAY


class VectorStores:
    """Not thread-safe by itself: the server holds its lock around every request."""

    def __init__(self, files: FileStore, clock: Callable[[], float] = time.time) -> None:
        self._files = files
        self._clock = clock
        self._offset = 0.0
        self._stores: dict[str, VectorStore] = {}

    # The test side.
    def advance_clock(self, seconds: float) -> None:
        self._offset += seconds

    def clear(self) -> None:
        self._stores.clear()
        self._offset = 0.0

    # The API.
    def answer(
        self,
        request: Request,
        body: Any,
        vector_store_id: str | None = None,
        file_id: str | None = None,
    ) -> dict[str, Any]:
        """The answer to one call of ``VECTOR_STORE_ROUTES`` (``body``: the JSON body, {} when empty)."""
        method = request.method
        if vector_store_id is None:
            return self.create(body) if method == "POST" else self.list_page(request)
        if request.path.endswith("/files"):
            if method == "POST":
                return self.add_file(vector_store_id, body)
            return self.list_files(vector_store_id, request)
        if file_id is not None:
            if method == "DELETE":
                return self.delete_file(vector_store_id, file_id)
            return self.retrieve_file(vector_store_id, file_id)
        if method == "POST":
            return self.update(vector_store_id, body)
        return self.delete(vector_store_id) if method == "DELETE" else self.retrieve(vector_store_id)

    def create(self, data: Any) -> dict[str, Any]:
        body = parse(CreateVectorStoreBody, data)
        moment = self._now()
        store = VectorStore(
            id=new_id("vs"),
            created_at=moment,
            name=body.name or "",
            metadata=body.metadata or {},
            last_active_at=moment,
            expires_after=body.expires_after,
        )
        for index, file_id in enumerate(body.file_ids):
            self._attach(store, file_id, None, param=f"file_ids[{index}]")
        self._stores[store.id] = store
        return self.resource(store)

    def retrieve(self, store_id: str) -> dict[str, Any]:
        return self.resource(self.get(store_id))

    def update(self, store_id: str, data: Any) -> dict[str, Any]:
        store = self.get(store_id)
        body = parse(UpdateVectorStoreBody, data)
        if "name" in body.model_fields_set and body.name is not None:
            store.name = body.name
        if "metadata" in body.model_fields_set:
            store.metadata = body.metadata or {}
        if "expires_after" in body.model_fields_set:
            store.expires_after = body.expires_after
        self._touch(store)
        return self.resource(store)

    def list_page(self, request: Request) -> dict[str, Any]:
        return page(list(self._stores.values()), request, resource=self.resource, id_of=lambda s: s.id)

    def delete(self, store_id: str) -> dict[str, Any]:
        self.get(store_id)
        del self._stores[store_id]
        return {"id": store_id, "object": "vector_store.deleted", "deleted": True}

    def add_file(self, store_id: str, data: Any) -> dict[str, Any]:
        store = self.get(store_id)
        body = parse(CreateVectorStoreFileBody, data)
        attached = self._attach(store, body.file_id, body.attributes, param="file_id")
        self._touch(store)
        return _file_resource(store, attached)

    def list_files(self, store_id: str, request: Request) -> dict[str, Any]:
        store = self.get(store_id)
        status = request.args.get("filter")
        files = [] if status not in (None, "completed") else list(store.files.values())
        return page(files, request, resource=lambda f: _file_resource(store, f), id_of=lambda f: f.file_id)

    def retrieve_file(self, store_id: str, file_id: str) -> dict[str, Any]:
        store = self.get(store_id)
        return _file_resource(store, self._file(store, file_id))

    def delete_file(self, store_id: str, file_id: str) -> dict[str, Any]:
        """Detaches the file; the file itself stays in the Files API, as on the real service."""
        store = self.get(store_id)
        self._file(store, file_id)
        del store.files[file_id]
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    def search_page(self, store_id: str, data: Any) -> dict[str, Any]:
        body = parse(SearchBody, data)
        queries = [body.query] if isinstance(body.query, str) else body.query
        hits = self.search(store_id, " ".join(queries), body.max_num_results)
        return {
            "object": "vector_store.search_results.page",
            "search_query": queries,
            "data": [
                {
                    "file_id": hit.chunk.file_id,
                    "filename": hit.chunk.filename,
                    "score": hit.score,
                    "attributes": hit.chunk.attributes,
                    "content": [{"type": "text", "text": hit.chunk.text}],
                }
                for hit in hits
            ],
            "has_more": False,
            "next_page": None,
        }

    # What the file_search tool uses.
    def get(self, store_id: str, *, param: str | None = None) -> VectorStore:
        store = self._stores.get(store_id)
        if store is None:
            raise not_found(f"Vector store with id '{store_id}' not found.", param=param)
        return store

    def check_usable(self, store_id: str, *, param: str) -> None:
        """Raise the real service's error for a store a search cannot use (missing or expired)."""
        store = self.get(store_id, param=param)
        if self._status(store) == "expired":
            raise invalid_request(f"Vector store {store_id} is expired.", param=param, code="invalid_value")

    def search(self, store_id: str, query: str, max_results: int) -> list[SearchHit]:
        """The best chunks of the store's files for ``query``, best first (an activity: it renews expiry)."""
        self.check_usable(store_id, param="vector_store_id")
        store = self.get(store_id)
        self._touch(store)
        return rank([store], query, max_results)

    def resource(self, store: VectorStore) -> dict[str, Any]:
        count = len(store.files)
        body: dict[str, Any] = {
            "id": store.id,
            "object": "vector_store",
            "created_at": store.created_at,
            "name": store.name,
            "usage_bytes": sum(f.usage_bytes for f in store.files.values()),
            "file_counts": {
                "in_progress": 0,
                "completed": count,
                "failed": 0,
                "cancelled": 0,
                "total": count,
            },
            "status": self._status(store),
            "expires_at": store.expires_at(),
            "last_active_at": store.last_active_at,
            "metadata": store.metadata,
        }
        if store.expires_after is not None:
            body["expires_after"] = store.expires_after.model_dump()
        return body

    def _now(self) -> int:
        return int(self._clock() + self._offset)

    def _status(self, store: VectorStore) -> str:
        expires_at = store.expires_at()
        return "expired" if expires_at is not None and self._now() >= expires_at else "completed"

    def _touch(self, store: VectorStore) -> None:
        if self._status(store) != "expired":  # an expired store stays expired
            store.last_active_at = self._now()

    def _attach(
        self, store: VectorStore, file_id: str, attributes: dict[str, Any] | None, *, param: str
    ) -> VectorStoreFile:
        if not self._files.exists(file_id):
            raise invalid_request(f"File {file_id} not found.", param=param)
        stored = self._files.get(file_id)
        if stored.purpose not in SEARCHABLE_PURPOSES:
            raise invalid_request(
                f"File {file_id} has purpose '{stored.purpose}'; a vector store takes files with purpose "
                f"{' or '.join(repr(p) for p in SEARCHABLE_PURPOSES)}.",
                param=param,
                code="invalid_value",
            )
        attached = VectorStoreFile(
            file_id=file_id,
            created_at=self._now(),
            usage_bytes=len(stored.data),
            attributes=attributes,
            chunks=[
                Chunk(file_id, stored.filename, text, attributes)
                for text in chunks_of(stored.data.decode("utf-8", errors="replace"))
            ],
        )
        store.files[file_id] = attached
        return attached

    @staticmethod
    def _file(store: VectorStore, file_id: str) -> VectorStoreFile:
        attached = store.files.get(file_id)
        if attached is None:
            raise not_found(f"No file found with id '{file_id}' in vector store '{store.id}'.")
        return attached


def chunks_of(text: str) -> list[str]:
    """The text's paragraphs (split on blank lines), each cut into pieces of at most ``CHUNK_WORDS`` words."""
    chunks = []
    for paragraph in text.replace("\r\n", "\n").split("\n\n"):
        words = paragraph.split()
        chunks += [" ".join(words[i : i + CHUNK_WORDS]) for i in range(0, len(words), CHUNK_WORDS)]
    return chunks


def rank(stores: list[VectorStore], query: str, max_results: int) -> list[SearchHit]:
    """Every chunk of the stores' files that shares a key word with ``query``, best first (stable)."""
    asked = key_words(query)
    if not asked:
        return []
    hits = []
    for store in stores:
        for attached in store.files.values():
            for chunk in attached.chunks:
                shared = len(asked & key_words(chunk.text))
                if shared:
                    hits.append(SearchHit(chunk, round(shared / len(asked), 4)))
    hits.sort(key=lambda hit: -hit.score)
    return hits[:max_results]


def _file_resource(store: VectorStore, attached: VectorStoreFile) -> dict[str, Any]:
    return {
        "id": attached.file_id,
        "object": "vector_store.file",
        "usage_bytes": attached.usage_bytes,
        "created_at": attached.created_at,
        "vector_store_id": store.id,
        "status": "completed",
        "last_error": None,
        "chunking_strategy": _STATIC_CHUNKING,
        "attributes": attached.attributes,
    }
