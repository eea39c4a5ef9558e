"""The operators' kill switch: active runs across users, and what a cancel of a user's runs did."""

from __future__ import annotations

from datetime import datetime

from threadrunner.models.deferred_model import DeferredModel
from threadrunner.models.records import RunRecord

# A page of active runs goes on after a position: the last run's creation time (as stored) and id. Any such
# position is a valid one, so the document's pattern is the whole rule.
ACTIVE_RUNS_CURSOR_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z~run_[0-9a-z]{26}$"


class ActiveRunOut(DeferredModel):
    id: str
    user_id: str
    thread_id: str
    assistant: str
    model: str
    status: str
    created_at: datetime
    started_at: datetime | None
    cancel_requested: bool

    @classmethod
    def of(cls, run: RunRecord) -> ActiveRunOut:
        return cls(
            id=run.id,
            user_id=run.user_id,
            thread_id=run.thread_id,
            assistant=run.assistant,
            model=run.model,
            status=run.status,
            created_at=run.created_at,
            started_at=run.started_at,
            cancel_requested=run.cancel_requested,
        )


class ActiveRunPage(DeferredModel):
    """Oldest first; pass ``next`` back as ``after`` for the following page (None: that was the last)."""

    runs: list[ActiveRunOut]
    next: str | None


class UserRunsCancelled(DeferredModel):
    user_id: str
    ended: list[str]  # cancelled at once (they were queued)
    cancelling: list[str]  # flagged: Check run cancels them upstream and Finish run ends them
