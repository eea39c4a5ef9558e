"""Staging an upload (threadrunner.files.staging) over moto DynamoDB and S3 and an in-memory upstream:
one upstream file per upload whatever the event delivery does, every refusal a failed file with a reason, and
once staged, the file's bytes never change, whatever a replayed presigned POST carries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, BinaryIO

import boto3
import pytest
from threadrunner import clock
from threadrunner.engines.base import GeneratedFile
from threadrunner.errors import UpstreamError, UpstreamOutcomeUnknown, UpstreamUnavailable
from threadrunner.files import staging
from threadrunner.models.records import FilePurpose, FileRecord, FileStatus
from threadrunner.settings import FileSettings
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.files import FileStore

from tests.support.aws import moto_tables

BUCKET = "files"
CSV = b"region,total\nNorth,1\n"


@dataclass
class FakeUpstreamFiles:
    """The upstream's Files API: what was uploaded, what was deleted, and a failure to raise next."""

    uploaded: dict[str, bytes] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    fail_next: Exception | None = None
    during_upload: Any = None  # called mid-upload (a concurrent event, a delete)

    def upload_file(self, filename: str, stream: BinaryIO, content_type: str, expires_seconds: int) -> str:
        if self.during_upload is not None:
            self.during_upload()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        file_id = f"file-{len(self.uploaded) + 1}"
        self.uploaded[file_id] = stream.read()
        return file_id

    def delete_file(self, upstream_file_id: str) -> None:
        self.deleted.append(upstream_file_id)

    def download(self, file: GeneratedFile) -> AbstractContextManager[Iterator[bytes]]:
        raise NotImplementedError


@dataclass
class World:
    ctx: staging.StagingContext
    upstream: FakeUpstreamFiles
    s3: Any

    def upload(
        self, data: bytes = CSV, content_type: str = "text/csv", declared: int | None = None
    ) -> FileRecord:
        record = FileRecord(
            id=clock.new_id("file"),
            user_id="alice",
            thread_id="thr_1",
            engine="responses",
            filename="sales.csv",
            content_type=content_type,
            size_bytes=declared or len(data),
            purpose=FilePurpose.code_interpreter,
            created_at=clock.now(),
        )
        self.ctx.files.create(record)
        self.post(record, data)
        return record

    def post(self, record: FileRecord, data: bytes) -> None:
        """What the presigned POST writes, the first time or replayed (it is valid until it expires)."""
        self.s3.put_object(Bucket=BUCKET, Key=record.upload_key, Body=data, ContentType=record.content_type)

    def stage(self, record: FileRecord, deadline_in: float = 60) -> FileStatus | None:
        return staging.stage(record.upload_key, clock.now() + timedelta(seconds=deadline_in), self.ctx)

    def status(self, record: FileRecord) -> FileRecord:
        found = self.ctx.files.find(record.user_id, record.id)
        assert found is not None
        return found

    def upload_exists(self, record: FileRecord) -> bool:
        return "Contents" in self.s3.list_objects_v2(Bucket=BUCKET, Prefix=record.upload_key)

    def staged_bytes(self, record: FileRecord) -> bytes | None:
        """The file's own bytes (what runs inline, what went upstream); None when there is no copy."""
        found = self.ctx.blobs.find_head(record.key, 1 << 20)
        return found[1] if found else None


@pytest.fixture
def world() -> Iterator[World]:
    with moto_tables() as tables:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        upstream = FakeUpstreamFiles()
        ctx = staging.StagingContext(
            files=FileStore(tables["threads"]),
            blobs=BlobStore(s3, BUCKET),
            engine=lambda name: upstream if name in staging.FILE_ENGINES else None,
            settings=FileSettings(allowed_file_types=["text/csv", "image/png"], max_file_bytes=1000),
        )
        yield World(ctx, upstream, s3)


def test_a_good_upload_goes_upstream_once_however_often_its_event_comes(world: World) -> None:
    record = world.upload()
    assert world.stage(record) is FileStatus.ready
    assert world.stage(record) is FileStatus.ready  # S3 delivers at least once
    assert list(world.upstream.uploaded.values()) == [CSV]
    assert world.status(record).upstream_file_id == "file-1"


def test_an_event_while_another_attempt_uploads_leaves_the_file_to_it(world: World) -> None:
    record = world.upload()
    seen: list[FileStatus | None] = []
    world.upstream.during_upload = lambda: seen.append(world.stage(record))  # the duplicate, mid-upload
    assert world.stage(record) is FileStatus.ready
    assert seen == [FileStatus.pending]  # it saw the claim and did nothing
    assert len(world.upstream.uploaded) == 1


def test_an_attempt_that_died_mid_upload_fails_the_file_instead_of_uploading_again(world: World) -> None:
    record = world.upload()
    world.upstream.fail_next = RuntimeError(
        "the Lambda was killed"
    )  # not an upstream answer: nothing handled
    with pytest.raises(RuntimeError):
        world.stage(record, deadline_in=-1)  # its claim ran out with it
    assert world.stage(record) is FileStatus.failed
    assert "interrupted" in (world.status(record).reason or "")
    assert world.upstream.uploaded == {}


def test_a_passing_upstream_outage_is_raised_for_a_retry_that_then_stages(world: World) -> None:
    record = world.upload()
    world.upstream.fail_next = UpstreamUnavailable("503")
    with pytest.raises(UpstreamUnavailable):
        world.stage(record)
    assert world.status(record).status is FileStatus.pending
    assert world.stage(record) is FileStatus.ready
    assert len(world.upstream.uploaded) == 1


@pytest.mark.parametrize(
    "error",
    [UpstreamError("400 invalid_file"), UpstreamOutcomeUnknown("timed out")],
    ids=["refused", "unknown"],
)
def test_an_upstream_refusal_or_unknown_outcome_fails_the_file_with_the_reason(
    world: World, error: UpstreamError
) -> None:
    record = world.upload()
    world.upstream.fail_next = error
    assert world.stage(record) is FileStatus.failed
    assert str(error) in (world.status(record).reason or "")


@pytest.mark.parametrize(
    ("data", "content_type", "declared", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 8, "text/csv", None, "binary"),  # bytes of another type
        (b"GIF89a....", "image/png", None, "not image/png"),
        (b"caf\xe9,1\n", "text/csv", None, "not UTF-8"),
        (CSV, "text/csv", 5, "more than the 5 declared"),  # what a presigned POST would have refused
        (CSV * 100, "text/csv", 5000, "more than the 1000 allowed"),
        (b"%PDF-1.7", "application/pdf", None, "not allowed"),  # not in this environment's list
    ],
)
def test_a_refused_upload_fails_with_its_reason_and_is_deleted_before_anything_goes_upstream(
    world: World, data: bytes, content_type: str, declared: int | None, reason: str
) -> None:
    record = world.upload(data, content_type, declared)
    assert world.stage(record) is FileStatus.failed
    assert reason in (world.status(record).reason or "")
    assert world.upstream.uploaded == {} and not world.upload_exists(record)
    assert world.staged_bytes(record) is None  # a failed file keeps no copy either


def test_a_file_deleted_while_it_was_uploading_leaves_nothing_upstream(world: World) -> None:
    record = world.upload()
    world.upstream.during_upload = lambda: world.ctx.files.mark_deleting("alice", record.id, clock.now())
    assert world.stage(record) is None
    assert world.upstream.deleted == ["file-1"]


def test_an_upload_whose_file_is_gone_is_deleted(world: World) -> None:
    record = world.upload()
    world.ctx.files.delete("alice", record.id)
    assert world.stage(record) is None
    assert not world.upload_exists(record) and world.upstream.uploaded == {}


def test_a_chat_thread_file_is_ready_without_an_upstream_copy(world: World) -> None:
    record = world.upload()
    world.ctx.files.delete("alice", record.id)
    chat = record.model_copy(update={"engine": "chat"})
    world.ctx.files.create(chat)
    assert world.stage(chat) is FileStatus.ready
    assert world.status(chat).upstream_file_id is None and world.upstream.uploaded == {}


def test_keys_that_are_not_uploads_are_ignored(world: World) -> None:
    assert staging.parse_key("outputs/thr_1/run_1/chart.png") is None
    assert staging.parse_key("uploads/team/alice/file_01") == ("team/alice", "file_01")
    assert staging.stage("messages/x", clock.now(), world.ctx) is None


# A presigned POST can be sent again until it expires (15 minutes): after staging, the file's bytes must not
# change under it, whatever the replay carries and whenever its event comes.
OTHER = b"region,total\nSouth,9\n"  # as long as CSV, so the POST's size condition lets it in


@pytest.mark.parametrize("engine", ["responses", "chat"])
def test_a_replayed_upload_after_staging_changes_nothing_and_is_deleted(world: World, engine: str) -> None:
    # Given a file staged from CSV
    record = world.upload()
    world.ctx.files.delete("alice", record.id)
    record = record.model_copy(update={"engine": engine})
    world.ctx.files.create(record)
    assert world.stage(record) is FileStatus.ready
    assert not world.upload_exists(record)  # the upload was a hand-over: the file is the staged copy
    # When the same presigned POST is replayed with other bytes, and its event comes
    world.post(record, OTHER)
    assert world.stage(record) is FileStatus.ready
    # Then the staged copy (what chat inlines, what went upstream) is still CSV, and the replay is gone
    assert world.staged_bytes(record) == CSV
    assert list(world.upstream.uploaded.values()) == ([CSV] if engine == "responses" else [])
    assert not world.upload_exists(record)
    assert world.status(record).status is FileStatus.ready


def test_a_replay_while_the_file_is_being_staged_is_never_used(world: World) -> None:
    record = world.upload()
    seen: list[FileStatus | None] = []

    def replay() -> None:
        # Mid-upload: the upload was copied and deleted already, so the replay lands on a free key
        assert not world.upload_exists(record) and world.staged_bytes(record) == CSV
        world.post(record, OTHER)
        seen.append(world.stage(record))  # its event, while the first attempt holds the claim

    world.upstream.during_upload = replay
    assert world.stage(record) is FileStatus.ready
    assert seen == [FileStatus.pending]
    assert list(world.upstream.uploaded.values()) == [CSV] and world.staged_bytes(record) == CSV
    assert not world.upload_exists(record)


def test_a_retried_attempt_keeps_the_copy_an_earlier_one_made(world: World) -> None:
    # Given an attempt that copied the upload, then met an outage (released for a retry)
    record = world.upload()
    world.upstream.fail_next = UpstreamUnavailable("503")
    with pytest.raises(UpstreamUnavailable):
        world.stage(record)
    assert world.staged_bytes(record) == CSV and not world.upload_exists(record)
    # When a replay lands before the retry
    world.post(record, OTHER)
    # Then the retry stages the copy it finds, not the replay
    assert world.stage(record) is FileStatus.ready
    assert list(world.upstream.uploaded.values()) == [CSV] and world.staged_bytes(record) == CSV
    assert not world.upload_exists(record)


def test_a_file_whose_upload_and_copy_are_both_gone_fails(world: World) -> None:
    record = world.upload()
    world.s3.delete_object(Bucket=BUCKET, Key=record.upload_key)  # say, expired before a late event
    assert world.stage(record) is FileStatus.failed
    assert "no longer stored" in (world.status(record).reason or "")
