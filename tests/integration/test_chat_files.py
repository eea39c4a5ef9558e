"""Files on the chat engine over moto (DynamoDB, S3) and the emulator: the API refuses files that cannot be
inlined (422 naming the file, nothing created), and the chat engine puts a run's text files into its user
message, keeps that content in the thread's log and replays it on later runs, once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import boto3
import pytest
from openai import OpenAI
from threadrunner import clock, history
from threadrunner.engines.base import RunFile, RunRequest, ToolOutput
from threadrunner.engines.chat import ChatEngine
from threadrunner.errors import ConflictError, FileNotInlinable, InvalidRequestError
from threadrunner.models.api_runs import CreateRunRequest
from threadrunner.models.records import FilePurpose, FileRecord, FileStatus, RunRecord, ThreadRecord
from threadrunner.services.context import ApiContext, default_context
from threadrunner.services.runs import create_run
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.chat_rounds import ChatRoundStore, ChatState
from threadrunner.stores.files import FileStore

from local.emulator import EmulatorServer, Plan
from local.stack import forget_cached_clients
from tests.support.aws import moto_tables

BUCKET = "files"
SALES_CSV = b"region,total\nNorth,1234.5\nSouth,99\n"
INLINE_LIMIT = 1000


@dataclass
class World:
    api: ApiContext
    files: FileStore
    blobs: BlobStore
    s3: Any
    started: list[str] = field(default_factory=list)

    def thread(self, engine: str) -> ThreadRecord:
        thread, _ = self.api.threads.get_or_create(
            user_id="alice",
            assistant="data-analyst",
            purpose=clock.new_id("p"),
            engine=engine,
            max_age_hours=24,
            ttl_days=30,
        )
        return thread

    def ready_file(
        self,
        thread: ThreadRecord,
        name: str,
        data: bytes,
        content_type: str = "text/csv",
        status: FileStatus = FileStatus.ready,
    ) -> FileRecord:
        """A file staged for the thread (chat stages nothing upstream: its staged copy stays in S3)."""
        record = FileRecord(
            id=clock.new_id("file"),
            user_id="alice",
            thread_id=thread.id,
            engine=thread.engine,
            filename=name,
            content_type=content_type,
            size_bytes=len(data),
            purpose=FilePurpose.input,
            status=status,
            created_at=clock.now(),
        )
        self.files.create(record)
        self.s3.put_object(Bucket=BUCKET, Key=record.key, Body=data, ContentType=content_type)
        return record


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with moto_tables() as tables:
        # The API's own wiring (services/context.py) over these tables; only the Step Functions start is faked.
        for logical, table in tables.items():
            monkeypatch.setenv(f"THREADRUNNER_{logical.upper()}_TABLE", table.name)
        monkeypatch.setenv("THREADRUNNER_BUCKET", BUCKET)
        monkeypatch.setenv("THREADRUNNER_CHAT_INLINE_BYTES", str(INLINE_LIMIT))
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        forget_cached_clients()
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        started: list[str] = []

        def start_execution(run_id: str) -> str:
            started.append(run_id)
            return f"arn:aws:states:us-east-1:123456789012:execution:run:{run_id}"

        api = replace(default_context(), start_execution=start_execution)
        yield World(api=api, files=api.files, blobs=BlobStore(s3, BUCKET), s3=s3, started=started)
    forget_cached_clients()


def post_run(world: World, thread: ThreadRecord, *files: FileRecord) -> Any:
    request = CreateRunRequest(message="Sum the totals", file_ids=[file.id for file in files])
    return create_run(world.api, "alice", thread.id, request)


def assert_nothing_created(world: World, thread: ThreadRecord) -> None:
    current = world.api.threads.get("alice", thread.id)
    assert current.active_run_id is None  # the thread was not locked
    logged, _ = world.api.messages.page(thread.id, limit=10)
    assert logged == []  # no user message: no run was recorded
    assert world.started == []


@pytest.mark.parametrize(
    ("content_type", "data", "reason"),
    [
        ("application/pdf", b"%PDF-1.7 brief", "application/pdf, and the chat engine reads only text files"),
        ("image/png", b"\x89PNG\r\n\x1a\n....", "image/png, and the chat engine reads only text files"),
        ("text/csv", b"x" * (INLINE_LIMIT - len(SALES_CSV) + 1), "past the 1000 the chat engine inlines"),
    ],
    ids=["pdf", "png", "over the inline limit"],
)
def test_a_chat_run_with_a_file_it_cannot_inline_is_a_422_naming_the_file(
    world: World, content_type: str, data: bytes, reason: str
) -> None:
    # Given a chat thread with a CSV that fits, and a second file that is not text or takes the run too far
    thread = world.thread("chat")
    fits = world.ready_file(thread, "sales.csv", SALES_CSV)
    refused = world.ready_file(thread, "second", data, content_type)

    # When a run is posted with both
    with pytest.raises(FileNotInlinable) as error:
        post_run(world, thread, fits, refused)

    # Then it is a 422 (an InvalidRequestError) naming the second file and why, and nothing was created
    assert isinstance(error.value, InvalidRequestError)
    assert error.value.field == "file_ids.1"
    assert str(error.value).startswith(f"file_ids.1: file {refused.id} (second) cannot be inlined: ")
    assert reason in str(error.value)
    assert_nothing_created(world, thread)


def test_the_same_files_are_fine_on_a_responses_thread(world: World) -> None:
    # Given a responses thread (files go upstream) with a PDF over the chat inline limit
    thread = world.thread("responses")
    pdf = world.ready_file(thread, "brief.pdf", b"%PDF-1.7" + b"x" * INLINE_LIMIT, "application/pdf")
    # Then the run is accepted
    assert post_run(world, thread, pdf).status == "queued"
    assert len(world.started) == 1


def test_a_chat_run_with_text_files_within_the_limit_is_accepted(world: World) -> None:
    thread = world.thread("chat")
    files = [
        world.ready_file(thread, "sales.csv", SALES_CSV),
        world.ready_file(thread, "notes.json", b'{"note": "Q3"}', "application/json"),
    ]
    run = post_run(world, thread, *files)
    assert run.file_ids == [file.id for file in files] and len(world.started) == 1


def test_a_pending_file_is_still_a_409_before_any_inline_check(world: World) -> None:
    # Given a chat thread's PDF that is not staged yet
    thread = world.thread("chat")
    pending = world.ready_file(thread, "brief.pdf", b"%PDF-1.7", "application/pdf", FileStatus.pending)
    # Then the answer is the pending file's 409 (wait for ready), as on every engine
    with pytest.raises(ConflictError):
        post_run(world, thread, pending)
    assert_nothing_created(world, thread)


# The chat engine, with the emulator as its upstream.


@dataclass
class ChatWorld:
    engine: ChatEngine
    world: World
    thread: ThreadRecord

    def new_run(self, message: str, *files: FileRecord) -> tuple[RunRecord, RunRequest]:
        now = clock.now()
        run = RunRecord(
            id=clock.new_id("run"),
            thread_id=self.thread.id,
            user_id="alice",
            assistant="data-analyst",
            engine="chat",
            model="gpt-4.1-mini",
            message=message,
            file_ids=[file.id for file in files],
            created_at=now,
            deadline_at=now + timedelta(minutes=5),
        )
        self.world.api.runs.create(run)
        self.world.api.messages.add(history.user_message(run))  # as the API does
        request = RunRequest(
            upstream_thread_id="chat_1",
            model="gpt-4.1-mini",
            instructions="Analyse data.",
            tools=[],
            run_id=run.id,
            thread_id=self.thread.id,
            files=[
                RunFile(
                    file_id=file.id,
                    upstream_file_id=None,
                    filename=file.filename,
                    content_type=file.content_type,
                    purpose="input",
                    key=file.key,
                )
                for file in files
            ],
        )
        return run, request

    def finish(self, run: RunRecord, answer: str) -> None:
        """What Finish run logs for a run that answered."""
        ended = run.model_copy(update={"answer": answer, "completed_at": clock.now()})
        for message in history.run_outputs(ended):
            self.world.api.messages.add(message)


@pytest.fixture
def chat(world: World, openai_client: OpenAI) -> ChatWorld:
    messages = world.api.messages
    rounds = ChatRoundStore(boto3.resource("dynamodb", region_name="us-east-1").Table("test-runs"))
    state = ChatState(messages, rounds, lambda _model: 100_000, blobs=world.blobs, inline_bytes=INLINE_LIMIT)
    return ChatWorld(engine=ChatEngine(openai_client, state), world=world, thread=world.thread("chat"))


def user_contents(exchange: Any) -> list[str]:
    return [m["content"] for m in exchange.request_json["messages"] if m["role"] == "user"]


def completions(emulator: EmulatorServer) -> list[Any]:
    return [e for e in emulator.exchanges if e.method == "POST" and e.path == "/v1/chat/completions"]


INLINED = (
    "Sum the totals\n\n"
    "----- file sales.csv (text/csv) -----\n"
    "region,total\nNorth,1234.5\nSouth,99\n"
    "----- end of sales.csv -----"
)


def test_the_chat_engine_inlines_a_csv_into_the_user_message_and_the_log(
    chat: ChatWorld, emulator: EmulatorServer
) -> None:
    # Given a CSV uploaded for a chat thread
    sales = chat.world.ready_file(chat.thread, "sales.csv", SALES_CSV)
    run, request = chat.new_run("Sum the totals", sales)
    emulator.script(Plan.message("North and South come to 1,333.50."))

    # When the run starts
    chat.engine.start(request, run.message)

    # Then the model got the message with the file's text under a header naming it
    (create,) = completions(emulator)
    assert user_contents(create) == [INLINED]
    # and the thread's log holds that content as the run's user message (the history later runs replay)
    logged, _ = chat.world.api.messages.page(chat.thread.id, limit=10)
    assert [(m.role, m.content) for m in logged] == [("user", INLINED)]


def test_each_tool_round_sends_the_inlined_message_again(chat: ChatWorld, emulator: EmulatorServer) -> None:
    # Given a chat run with a CSV, whose model asks for a tool
    sales = chat.world.ready_file(chat.thread, "sales.csv", SALES_CSV)
    run, request = chat.new_run("Sum the totals", sales)
    emulator.script(
        Plan.tool_calls([("get_table_schema", {"table": "sales"})]), Plan.message("It is 1,333.50.")
    )
    run = run.model_copy(update={"response_ids": [chat.engine.start(request, run.message)]})
    (call,) = chat.engine.poll(run).tool_calls
    # and the upload gone since the start: a tool round reads the inlined content from the log, not S3
    chat.world.s3.delete_object(Bucket=BUCKET, Key=sales.key)
    # When the tool's output goes back (round 1)
    chat.engine.submit_tool_outputs(
        request, run, [ToolOutput(call_id=call.call_id, output=json.dumps({"columns": ["region"]}))]
    )
    # Then the second completion carries the same user content, once
    assert [user_contents(e) for e in completions(emulator)] == [[INLINED], [INLINED]]


def test_a_later_run_replays_the_inlined_files_from_the_log_once(
    chat: ChatWorld, emulator: EmulatorServer
) -> None:
    # Given a first run with a CSV, answered
    sales = chat.world.ready_file(chat.thread, "sales.csv", SALES_CSV)
    first, request = chat.new_run("Sum the totals", sales)
    emulator.script(Plan.message("1,333.50."), Plan.message("North."))
    chat.engine.start(request, first.message)
    chat.finish(first, "1,333.50.")
    # and its upload gone since (S3 expires uploads after a few days)
    chat.world.s3.delete_object(Bucket=BUCKET, Key=sales.key)

    # When a second run, without files, starts
    second, request = chat.new_run("Which region sold most?")
    chat.engine.start(request, second.message)

    # Then its history is the first run's inlined message and answer, then its own message
    replayed = completions(emulator)[-1].request_json["messages"]
    assert [(m["role"], m["content"]) for m in replayed[1:]] == [
        ("user", INLINED),
        ("assistant", "1,333.50."),
        ("user", "Which region sold most?"),
    ]


def test_a_file_the_chat_engine_cannot_read_fails_the_start_naming_it(
    chat: ChatWorld, emulator: EmulatorServer
) -> None:
    # Given a CSV whose bytes past the staged sample are not UTF-8
    broken = chat.world.ready_file(chat.thread, "latin1.csv", b"region\nK\xf6ln\n")
    run, request = chat.new_run("Sum the totals", broken)
    # When the run starts, it fails before any completion, naming the file
    with pytest.raises(FileNotInlinable, match=r"file_ids.0: .*latin1.csv.* not UTF-8 text"):
        chat.engine.start(request, run.message)
    assert completions(emulator) == []
    # and the user's own message stays in the log as it was
    logged, _ = chat.world.api.messages.page(chat.thread.id, limit=10)
    assert [m.content for m in logged] == ["Sum the totals"]
