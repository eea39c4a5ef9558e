"""POST /v1/threads/{id}/runs is all or nothing: the run, its user message and its turn on the thread (the
lock, or a place in the queue, with the thread's TTL pushed forward) are one DynamoDB transaction, so a write
that fails leaves no thread held by a run that does not exist, and no run that will never start. A thread
being deleted takes no new run: the client is answered as for a deleted thread (404).

The API's own wiring (services/context.py) over moto; only the Step Functions start is faked. DynamoDB's
failures are injected into the clients the API uses, before a request leaves them, whatever store makes it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import boto3
import pytest
from botocore.exceptions import ClientError
from threadrunner import aws
from threadrunner.errors import NotFoundError, ServiceUnavailableError
from threadrunner.models.api_runs import CreateRunRequest, RunOut
from threadrunner.models.records import MessageRecord, RunRecord, ThreadRecord
from threadrunner.services.context import ApiContext, default_context
from threadrunner.services.runs import RUN_MESSAGE_INLINE_BYTES, create_run
from threadrunner.stores.threads import ThreadStore

from local.stack import forget_cached_clients
from tests.support.aws import moto_tables

BUCKET = "runs-created"
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})


@dataclass
class FailingWrite:
    """DynamoDB failing the ``n``-th write (of any store, to any table) after ``fail``, as a 500 would."""

    fail_at: int | None = None
    seen: int = 0
    failed: list[str] = field(default_factory=list)  # the operations that failed

    def fail(self, n: int) -> None:
        self.fail_at, self.seen, self.failed = n, 0, []

    def __call__(self, model: Any, params: Any = None, **_: Any) -> None:
        if self.fail_at is None or model.name not in WRITES or _logs_an_event(params):
            return
        self.seen += 1
        if self.seen == self.fail_at:
            self.fail_at = None
            self.failed.append(model.name)
            raise ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "injected: the write failed"}},
                model.name,
            )


def _logs_an_event(params: Any) -> bool:
    """A write of the run's event log: best effort by design (a failure is logged, the request goes on)."""
    items = (params or {}).get("TransactItems", [])
    return any(
        str(item.get("Put", {}).get("Item", {}).get("sk", {}).get("S", "")).startswith("event#")
        for item in items
    )


@dataclass
class World:
    api: ApiContext
    threads_table: str
    writes: FailingWrite
    started: list[str]
    purposes: Iterator[int] = field(default_factory=itertools.count)

    def thread(self) -> ThreadRecord:
        thread, _ = self.api.threads.get_or_create(
            user_id="alice",
            assistant="data-analyst",
            purpose=f"p{next(self.purposes)}",
            engine="responses",
            max_age_hours=24,
            ttl_days=30,
        )
        return thread

    def post(self, thread: ThreadRecord, message: str = "Sales by region?", **options: Any) -> RunOut:
        return create_run(self.api, "alice", thread.id, CreateRunRequest(message=message, **options))

    def left_on(self, thread: ThreadRecord) -> tuple[ThreadRecord, list[RunRecord], list[MessageRecord]]:
        """The thread as stored, its runs and its log."""
        current = self.api.threads.find("alice", thread.id)
        assert current is not None
        messages, _ = self.api.messages.page(thread.id, limit=100)
        return current, self.api.runs.list_for_thread(thread.id), messages


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with moto_tables() as tables:
        for logical, table in tables.items():
            monkeypatch.setenv(f"THREADRUNNER_{logical.upper()}_TABLE", table.name)
        monkeypatch.setenv("THREADRUNNER_BUCKET", BUCKET)
        monkeypatch.setenv("THREADRUNNER_RUNS_PER_MINUTE", "1000")  # its counter is one more write
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        forget_cached_clients()
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        started: list[str] = []

        def start_execution(run_id: str) -> str:
            started.append(run_id)
            return f"arn:aws:states:us-east-1:123456789012:execution:run:{run_id}"

        writes = FailingWrite()
        for table in tables.values():  # the clients of the tables the API's stores use
            aws.table(table.name).meta.client.meta.events.register("before-parameter-build.dynamodb", writes)
        api = replace(default_context(), start_execution=start_execution)
        yield World(api=api, threads_table=tables["threads"].name, writes=writes, started=started)
    forget_cached_clients()


@pytest.mark.parametrize(
    "message", ["Sales by region?", "x" * (RUN_MESSAGE_INLINE_BYTES + 1)], ids=["short", "long"]
)
def test_a_write_failing_while_a_run_is_created_leaves_nothing_behind_and_the_thread_free(
    world: World, message: str
) -> None:
    # Given DynamoDB failing, in turn, each write the request makes until the run's execution starts
    for n in itertools.count(1):
        thread = world.thread()
        world.started.clear()
        world.writes.fail(n)
        with suppress(ClientError):
            world.post(thread, message)
        if world.started:  # the n-th write comes after the start, or there is none: all were tried
            assert n > 2
            break
        assert world.writes.failed, f"write {n} did not fail, yet the run was not started"
        # Then nothing of the run is left: no lock, no run, no message, the TTL as it was
        current, runs, messages = world.left_on(thread)
        assert (current.active_run_id, current.queue, runs, messages) == (None, [], [], [])
        assert current.expires_at == thread.expires_at
        # and the thread takes a new run at once (202, not 409)
        run = world.post(thread, message)
        assert world.started == [run.id] and run.status == "queued" and run.queue_position is None
        current, runs, messages = world.left_on(thread)
        assert current.active_run_id == run.id and [r.id for r in runs] == [run.id] and len(messages) == 1


def test_a_write_failing_while_a_run_joins_the_queue_leaves_nothing_behind(world: World) -> None:
    # Given a thread with an active run, and DynamoDB failing, in turn, each write of a request to queue behind it
    for n in itertools.count(1):
        thread = world.thread()
        active = world.post(thread)
        world.writes.fail(n)
        with suppress(ClientError):
            world.post(thread, "and then this", if_busy="enqueue")
        if not world.writes.failed:  # fewer than n writes: all were tried
            assert n > 2
            break
        # Then the failed request left nothing: the line is empty, the active run alone on the thread
        current, runs, messages = world.left_on(thread)
        assert (current.active_run_id, current.queue) == (active.id, [])
        assert [r.id for r in runs] == [active.id] and len(messages) == 1
        # and the next request joins the line at once
        queued = world.post(thread, "and then this", if_busy="enqueue")
        assert queued.queue_position == 1
        assert world.left_on(thread)[0].queue == [queued.id]


class DeletedAfterRead(ThreadStore):
    """The thread store of a POST whose thread is deleted (DELETE /v1/threads/{id}) just after it read it."""

    def get(self, user_id: str, thread_id: str) -> ThreadRecord:
        thread = super().get(user_id, thread_id)
        self.mark_deleting(thread)
        return thread


@pytest.mark.parametrize("if_busy", ["reject", "enqueue"])
@pytest.mark.parametrize("busy", [False, True], ids=["free thread", "busy thread"])
def test_a_run_posted_while_its_thread_is_being_deleted_is_refused_as_for_a_deleted_thread(
    world: World, busy: bool, if_busy: Literal["reject", "enqueue"]
) -> None:
    # Given a POST racing a DELETE of its thread: the DELETE hides the thread after the POST read it
    thread = world.thread()
    active = world.post(thread) if busy else None
    racing = replace(world.api, threads=DeletedAfterRead(aws.table(world.threads_table)))
    world.started.clear()
    # When the POST goes on, it is answered as for a deleted thread (404), never 409
    with pytest.raises(NotFoundError):
        create_run(racing, "alice", thread.id, CreateRunRequest(message="too late", if_busy=if_busy))
    # and nothing was added to the thread being cleaned up
    current, runs, messages = world.left_on(thread)
    assert current.deleting_at is not None and current.queue == []
    assert current.active_run_id == (active.id if active else None)
    assert [r.id for r in runs] == ([active.id] if active else []) and len(messages) == (1 if active else 0)
    assert world.started == []


def test_a_run_whose_execution_cannot_start_ends_failed_and_frees_its_thread(world: World) -> None:
    # Given Step Functions refusing to start the run's execution
    thread = world.thread()

    def refuse(run_id: str) -> str:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "later"}}, "StartExecution")

    refusing = replace(world.api, start_execution=refuse)
    # When the run is posted, the client is told to try again
    with pytest.raises(ServiceUnavailableError):
        create_run(refusing, "alice", thread.id, CreateRunRequest(message="now?"))
    # Then the run ended failed, its message is in the log, and the thread takes the next run at once
    current, (run,), messages = world.left_on(thread)
    assert current.active_run_id is None
    assert run.status == "failed" and run.error is not None and run.error.code == "workflow_unavailable"
    assert [m.content for m in messages] == ["now?"]
    assert world.post(thread).queue_position is None and len(world.started) == 1
