"""Events of the cleanup Lambdas (threadrunner.cleanup)."""

from __future__ import annotations

from pydantic import Field

from threadrunner.models.deferred_model import DeferredModel


class DeleteThreadsRequest(DeferredModel):
    """What the API hands to functions/delete_threads (asynchronous invoke): the cleanups recorded for these
    threads, or with ``thread_ids`` None every cleanup of the user and then the rest of their items."""

    user_id: str
    thread_ids: list[str] | None = None
    # DELETE /v1/files/{id}: files to remove (upstream, S3, record) with no thread (pass thread_ids=[]).
    file_ids: list[str] = Field(default_factory=list)
