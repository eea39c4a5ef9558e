"""Whose turn it is on a thread: one run at a time (the upstream locks a conversation while a response runs),
the others queued in order behind it, each started when the one before it ends."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from threadrunner import clock
from threadrunner.errors import ConflictError
from threadrunner.models.records import RunRecord, RunStatus, ThreadRecord
from threadrunner.stores._dynamo import TransactItem
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore

StartExecution = Callable[[str], str]  # run id -> execution ARN
EndCancelled = Callable[[RunRecord], object]  # ends a queued run cancelled (with its accounting)
_ATTEMPTS = 5


def take_turn(
    threads: ThreadStore,
    thread: ThreadRecord,
    run_id: str,
    *,
    ttl_days: int | None = None,
    also: Sequence[TransactItem] = (),
) -> int | None:
    """The lock (None), or a place in the queue (its position, 1 = next). ``also`` (the new run's own items)
    and the TTL refresh go into the same transaction as the turn taken (stores/run_lock.py). NotFoundError:
    the thread is being deleted (or past its expiry)."""
    for _ in range(_ATTEMPTS):
        try:
            threads.acquire(thread, run_id, ttl_days=ttl_days, also=also)
        except ConflictError:
            position = threads.enqueue(thread, run_id, ttl_days=ttl_days, also=also)
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

    A write that fails raises, and the caller's retry (Finish run's) picks up where this stopped: every part
    is safe to repeat. A successor that holds the lock but was never started is started again (StartExecution
    with the same name is a no-op). One that never will (cancelled while it waited, on a thread being deleted,
    already ended by an earlier attempt, or gone) ends cancelled if it has not, and passes the lock on."""
    threads.release(run.user_id, run.thread_id, run.id, ttl_days)
    passed_on = {run.id}
    for _ in range(_ATTEMPTS * 4):
        thread = threads.find(run.user_id, run.thread_id)
        if thread is None or thread.active_run_id is None or thread.active_run_id in passed_on:
            return None
        holder_id = thread.active_run_id
        successor = runs.find(holder_id)
        if successor is not None and (successor.execution_arn or not _waiting(successor.status)):
            return None  # started: its own Finish run passes the lock on
        if successor is not None and successor.status is RunStatus.queued:
            if not (successor.cancel_requested or thread.deleting_at is not None):
                runs.update(successor.id, execution_arn=start_execution(successor.id))
                return successor.id
            if end_cancelled is None:
                runs.finish(successor.id, status=RunStatus.cancelled, completed_at=clock.now())
            else:
                end_cancelled(successor)
        # Ended (just now, or by an earlier attempt that stopped here) or gone: it will never start.
        threads.release(thread.user_id, thread.id, holder_id, ttl_days)
        passed_on.add(holder_id)
    return None


def _waiting(status: RunStatus) -> bool:
    """Not started: still queued, or ended before its execution started."""
    return status is RunStatus.queued or status.is_terminal
