"""The message log against moto: order, pages, S3 offload of large bodies, deletion."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from threadrunner import clock
from threadrunner.models.records import MessageRecord, MessageRole
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.messages import MessageStore, message_id

from tests.support.aws import moto_tables

BUCKET = "messages-test"
INLINE_BYTES = 100


@pytest.fixture
def s3() -> Iterator[Any]:
    with moto_tables() as tables:
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client, tables


@pytest.fixture
def store(s3: tuple[Any, dict[str, Any]]) -> MessageStore:
    client, tables = s3
    return MessageStore(tables["messages"], BlobStore(client, BUCKET), inline_bytes=INLINE_BYTES)


def _message(thread_id: str, run_id: str, position: int, content: str) -> MessageRecord:
    return MessageRecord(
        thread_id=thread_id,
        message_id=message_id(run_id, position),
        user_id="alice",
        run_id=run_id,
        role=MessageRole.user if position == 0 else MessageRole.assistant,
        created_at=clock.now(),
        content=content,
    )


def test_pages_read_oldest_first_by_run_then_position(store: MessageStore) -> None:
    runs = []
    for _ in range(3):
        runs.append(clock.new_id("run"))
        time.sleep(0.002)  # run ids sort by their millisecond of creation
    # written out of order (a queued run's question before the previous answer)
    for run_id, position in [
        (runs[0], 0),
        (runs[1], 0),
        (runs[0], 1),
        (runs[2], 0),
        (runs[1], 1),
        (runs[2], 1),
    ]:
        store.add(_message("thr_1", run_id, position, f"{runs.index(run_id)}.{position}"))
    store.add(_message("thr_other", runs[0], 0, "not mine"))
    contents, after = [], None
    while True:
        page, more = store.page("thr_1", limit=4, after=after)
        contents += [m.content for m in page]
        if not more:
            break
        after = page[-1].message_id
    assert contents == ["0.0", "0.1", "1.0", "1.1", "2.0", "2.1"]


def test_large_bodies_live_in_s3_and_read_back_whole(store: MessageStore, s3: tuple[Any, Any]) -> None:
    client, tables = s3
    run_id = clock.new_id("run")
    big = "é" * INLINE_BYTES  # 200 bytes in UTF-8: over the limit although 100 characters
    store.add(_message("thr_1", run_id, 1, big))
    store.add(_message("thr_1", run_id, 0, "small"))
    item = tables["messages"].get_item(Key={"thread_id": "thr_1", "message_id": message_id(run_id, 1)})[
        "Item"
    ]
    assert "content" not in item and item["content_key"] == f"messages/thr_1/{run_id}.0001"
    stored = client.get_object(Bucket=BUCKET, Key=item["content_key"])["Body"].read().decode()
    assert stored == big
    page, more = store.page("thr_1", limit=10)
    assert [m.content for m in page] == ["small", big] and not more


def test_delete_thread_removes_entries_and_bodies_of_that_thread_only(
    store: MessageStore, s3: tuple[Any, Any]
) -> None:
    client, _ = s3
    run_id = clock.new_id("run")
    for position in range(30):
        store.add(_message("thr_1", run_id, position, "x" * (200 if position % 3 == 0 else 10)))
    store.add(_message("thr_2", run_id, 0, "y" * 200))
    assert store.delete_thread("thr_1") == 30
    assert store.page("thr_1", limit=10) == ([], False)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert keys == [f"messages/thr_2/{run_id}.0000"]
    assert store.page("thr_2", limit=10)[0][0].content == "y" * 200
