"""Whose turn it is on a thread: one run at a time (the upstream locks a conversation while a response runs),
the others queued in order behind it, each started when the one before it ends."""

from __future__ import annotations

from collections.abc import Callable

from threadrunner import clock
from threadrunner.errors import ConflictError
from threadrunner.models.records import RunRecord, RunStatus, ThreadRecord
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore

StartExecution = Callable[[str], str]  # run id -> execution ARN
EndCancelled = Callable[[RunRecord], object]  # ends a queued run cancelled (with its accounting)
_ATTEMPTS = 5


def take_turn(threads: ThreadStore, thread: ThreadRecord, run_id: str) -> int | None:
    """The lock (None), or a place in the queue (its position, 1 = next)."""
    for _ in range(_ATTEMPTS):
        try:
            threads.acquire(thread, run_id)
        except ConflictError:
            position = threads.enqueue(thread, run_id)
            if position is not None:
                return position
            continue  # the active run ended in between: try the lock again
        return None
    raise ConflictError(f"thread {thread.id} is changing hands; try again")


def queue_position(thread: ThreadRecord, run_id: str) -> int | None:
    return thread.queue.index(run_id) + 1 if run_id in thread.queue else None


def end_turn(
    run: RunRecord,
    threads: ThreadStore,
    runs: RunStore,
    start_execution: StartExecution,
    ttl_days: int,
    end_cancelled: EndCancelled | None = None,
) -> str | None:
    """Release the lock ``run`` holds; the first queued run gets it and is started (its id is returned).

    Safe to repeat (a retried Finish run): a successor that holds the lock but was never started is started
    again, and StartExecution with the same name is a no-op. A successor cancelled while it waited, or on a
    thread being deleted, ends cancelled and passes the lock on."""
    threads.release(run.user_id, run.thread_id, run.id, ttl_days)
    ended = run
    for _ in range(_ATTEMPTS * 4):
        thread = threads.find(ended.user_id, ended.thread_id)
        if thread is None or thread.active_run_id in (None, ended.id, run.id):
            return None
        successor = runs.get(thread.active_run_id)
        if successor.status is not RunStatus.queued or successor.execution_arn:
            return None  # already started: not ours to start
        if successor.cancel_requested or thread.deleting_at is not None:
            if end_cancelled is None:
                runs.finish(successor.id, status=RunStatus.cancelled, completed_at=clock.now())
            else:
                end_cancelled(successor)
            threads.release(successor.user_id, successor.thread_id, successor.id, ttl_days)
            ended = successor
            continue
        runs.update(successor.id, execution_arn=start_execution(successor.id))
        return successor.id
    return None
