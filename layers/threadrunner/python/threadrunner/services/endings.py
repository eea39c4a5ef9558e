"""Ending a run that never started (cancelled in the queue, or its execution could not start), with its
accounting: the one way the API's services end runs (threadrunner.accounting)."""

from __future__ import annotations

from threadrunner import accounting
from threadrunner.models.records import RunError, RunRecord, RunStatus
from threadrunner.services.context import ApiContext


def end_before_start(
    ctx: ApiContext,
    run: RunRecord,
    status: RunStatus,
    error: RunError | None = None,
) -> bool:
    """End a run that never started (it used no tokens): counted in the metrics and on its user's day like
    any other. False: it had ended already."""
    return accounting.end_now(ctx, run, status, error)
