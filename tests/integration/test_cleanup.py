"""threadrunner.cleanup against moto and a fake engine: what a cleanup removes, what it keeps when the
upstream fails, the sweep, deletes of a user's data, and which stream records count as TTL removals."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from threadrunner import cleanup, clock, history
from threadrunner.errors import UpstreamUnavailable
from threadrunner.models.cleanup import DeleteThreadsRequest
from threadrunner.models.records import RunRecord, RunStatus, ThreadRecord, ToolCallRecord
from threadrunner.settings import CleanupSettings
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.cleanups import CleanupLedger
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore, thread_key
from threadrunner.stores.tool_call_ledger import ToolCallLedger

from tests.support.aws import moto_tables
from tests.support.fakes import FakeEngine
from tests.support.lifecycle import ttl_remove_record

BUCKET = "cleanup-test"


@dataclass
class FlakyEngine(FakeEngine):
    """Deletes fail while ``delete_failures`` lasts (an upstream that is down)."""

    delete_failures: int = 0
    deleted: list[str] = field(default_factory=list)
    deleted_stores: list[str] = field(default_factory=list)  # the threads' document stores (file_search)

    def vector_stores(self) -> FlakyEngine:
        return self

    def delete_store(self, vector_store_id: str) -> None:
        self.deleted_stores.append(vector_store_id)

    def delete_thread(self, upstream_thread_id: str) -> None:
        if self.delete_failures:
            self.delete_failures -= 1
            raise UpstreamUnavailable("the upstream did not answer: APIConnectionError")
        self.deleted.append(upstream_thread_id)


@dataclass
class World:
    ctx: cleanup.CleanupContext
    engine: FlakyEngine
    tables: dict[str, Any]
    s3: Any
    ledger: ToolCallLedger


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables() as tables:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        blobs = BlobStore(s3, BUCKET)
        engine = FlakyEngine()
        ctx = cleanup.CleanupContext(
            threads=ThreadStore(tables["threads"]),
            runs=RunStore(tables["runs"]),
            messages=MessageStore(tables["messages"], blobs, inline_bytes=50),
            cleanups=CleanupLedger(tables["threads"]),
            blobs=blobs,
            engine=lambda name: engine,
            settings=CleanupSettings(max_cleanup_attempts=3),
        )
        yield World(ctx, engine, tables, s3, ToolCallLedger(tables["runs"]))


def _thread_with_history(
    world: World, user_id: str, purpose: str, *, status: RunStatus = RunStatus.completed
) -> ThreadRecord:
    ctx = world.ctx
    thread, _ = ctx.threads.get_or_create(
        user_id=user_id, assistant="a", purpose=purpose, engine="responses", max_age_hours=24, ttl_days=7
    )
    ctx.threads.set_upstream_thread(thread, f"conv_{thread.id}")
    now = clock.now()
    run = RunRecord(
        id=clock.new_id("run"),
        thread_id=thread.id,
        user_id=user_id,
        assistant="a",
        engine="responses",
        model="m",
        message="question",
        created_at=now,
        deadline_at=now + timedelta(minutes=5),
        status=status,
        response_ids=["resp_1"],
        answer="a long answer " * 10,  # over the inline limit: its body goes to S3
    )
    ctx.runs.create(run)
    world.ledger.add(ToolCallRecord(run_id=run.id, call_id="call_1", round=0, name="t", arguments="{}"))
    for message in [history.user_message(run), *history.run_outputs(run)]:
        ctx.messages.add(message)
    world.s3.put_object(Bucket=BUCKET, Key=f"outputs/{thread.id}/{run.id}/chart.png", Body=b"png")
    return ctx.threads.find(user_id, thread.id)  # type: ignore[return-value]


def _items(world: World) -> list[dict[str, Any]]:
    return [item for table in world.tables.values() for item in table.scan()["Items"]]


def _objects(world: World) -> list[str]:
    return [o["Key"] for o in world.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_a_cleanup_removes_the_conversation_and_everything_of_the_thread_only(world: World) -> None:
    doomed = _thread_with_history(world, "alice", "doomed", status=RunStatus.in_progress)
    kept = _thread_with_history(world, "alice", "kept")
    before = len(_items(world))

    cleanup.clean_up(cleanup.pending_for(doomed), world.ctx)

    assert world.engine.deleted == [f"conv_{doomed.id}"]
    assert world.engine.cancelled == ["resp_1"]  # its unfinished run was stopped first
    assert not [item for item in _items(world) if doomed.id in str(item)]
    assert len(_items(world)) == before // 2  # the other thread's thread, slot, run, call, messages
    assert all(doomed.id not in key for key in _objects(world)) and len(_objects(world)) == 2
    assert world.ctx.threads.get("alice", kept.id).id == kept.id


def test_a_failing_upstream_delete_keeps_the_record_and_the_data_until_a_retry_succeeds(world: World) -> None:
    thread = _thread_with_history(world, "alice", "stubborn")
    world.engine.delete_failures = 2
    for attempt in (1, 2):
        with pytest.raises(UpstreamUnavailable):
            cleanup.clean_up(cleanup.pending_for(thread), world.ctx)
        record = world.ctx.cleanups.get("alice", thread.id)
        assert record is not None and record.attempts == attempt
        assert record.upstream_thread_id == f"conv_{thread.id}" and "APIConnectionError" in (
            record.last_error or ""
        )
    # nothing local was removed before the upstream was: a retry still knows everything
    assert world.ctx.threads.find("alice", thread.id) is not None
    assert world.ctx.messages.page(thread.id, limit=10)[0]
    cleanup.clean_up(cleanup.pending_for(thread), world.ctx)
    assert world.ctx.cleanups.get("alice", thread.id) is None
    assert world.engine.deleted == [f"conv_{thread.id}"]


def test_the_sweep_cleans_expired_threads_retries_failures_and_gives_up_past_the_limit(world: World) -> None:
    expired = _thread_with_history(world, "alice", "expired")
    assert world.ctx.threads.set_vector_store("alice", expired.id, f"vs_{expired.id}")  # its own documents
    fresh = _thread_with_history(world, "alice", "fresh")
    assert world.ctx.threads.set_vector_store("alice", fresh.id, f"vs_{fresh.id}")
    stuck = _thread_with_history(world, "bob", "stuck")
    world.tables["threads"].update_item(
        Key=thread_key("alice", expired.id),
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": clock.epoch(clock.now()) - 60},
    )
    world.engine.delete_failures = 3
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            cleanup.clean_up(cleanup.pending_for(stuck), world.ctx)
    world.engine.delete_failures = 0

    report = cleanup.sweep(world.ctx)

    assert report == cleanup.SweepReport(expired=1, retried=0, cleaned=1, failed=0, given_up=1)
    assert world.engine.deleted == [f"conv_{expired.id}"]
    assert world.engine.deleted_stores == [f"vs_{expired.id}"]  # its documents' store went with it, only its
    assert world.ctx.threads.find("alice", expired.id) is None
    assert world.ctx.threads.get("alice", fresh.id).id == fresh.id
    assert world.ctx.cleanups.get("bob", stuck.id) is not None  # left for a person, not forgotten


def test_deleting_a_users_data_cleans_every_recorded_thread_and_their_slots(world: World) -> None:
    threads = [_thread_with_history(world, "alice", f"t{n}") for n in range(3)]
    assert world.ctx.threads.set_vector_store("alice", threads[0].id, "vs_alice")
    threads[0] = world.ctx.threads.get("alice", threads[0].id)
    other = _thread_with_history(world, "bob", "t0")
    for thread in threads:
        world.ctx.cleanups.record(cleanup.pending_for(thread))
    world.engine.delete_failures = 1

    with pytest.raises(cleanup.CleanupFailed):
        cleanup.delete_threads(DeleteThreadsRequest(user_id="alice"), world.ctx)
    assert len(world.ctx.cleanups.for_user("alice")) == 1  # the failed one stays recorded
    assert cleanup.delete_threads(DeleteThreadsRequest(user_id="alice"), world.ctx) == 1

    assert not [item for item in _items(world) if "alice" in str(item)]
    assert world.engine.deleted_stores == ["vs_alice"]
    assert world.ctx.threads.get("bob", other.id).id == other.id


def test_only_ttl_removals_of_threads_count() -> None:
    serialize = TypeSerializer().serialize
    image = {
        name: serialize(value)
        for name, value in {
            "user_id": "alice",
            "sk": "thread#thr_1",
            "kind": "thread",
            "id": "thr_1",
            "assistant": "a",
            "purpose": "p",
            "engine": "responses",
            "created_at": "2026-01-01T00:00:00+00:00",
            "last_activity_at": "2026-01-01T00:00:00+00:00",
            "expires_at": 1700000000,
        }.items()
    }
    ttl = ttl_remove_record(image, table_arn="arn:t")
    thread = cleanup.thread_expired_by_ttl(ttl)
    assert thread is not None and (thread.id, thread.user_id, thread.expires_at) == (
        "thr_1",
        "alice",
        1700000000,
    )
    assert cleanup.thread_expired_by_ttl(ttl_remove_record(image, table_arn="arn:t", by_ttl=False)) is None
    assert cleanup.thread_expired_by_ttl({**ttl, "eventName": "MODIFY"}) is None
    slot = {**image, "kind": serialize("slot"), "sk": serialize("slot#a#p")}
    assert cleanup.thread_expired_by_ttl(ttl_remove_record(slot, table_arn="arn:t")) is None
