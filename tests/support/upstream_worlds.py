"""Start run against real upstreams: a primary emulator (``responses``, or ``assistants`` on the same server)
and a ``chat`` fallback emulator, over real HTTP and the production retry transport, on moto DynamoDB.

Between the primary and its client sits ``WireFaults``, a stand-in for a proxy: it can answer a call with an
error before the upstream sees it, or pass the call on and answer the error after the upstream took it (a
create accepted upstream whose answer was lost on the way back, which no emulator plan can show).
"""

from __future__ import annotations

import socket
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import boto3
import httpx2 as httpx
from threadrunner import clock, history
from threadrunner.engines import new_client
from threadrunner.engines.assistant_sync import AssistantRegistry
from threadrunner.engines.assistants_v2 import AssistantsEngine
from threadrunner.engines.chat import ChatEngine
from threadrunner.engines.responses import ResponsesEngine
from threadrunner.engines.retry import RetryPolicy
from threadrunner.fallback import Fallback
from threadrunner.models.records import FilePurpose, FileRecord, FileStatus, RunRecord
from threadrunner.models.workflow import PollSettings, RunProgress, StepInput
from threadrunner.settings import RunSettings, ToolSettings
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.breakers import CircuitBreakerStore
from threadrunner.stores.chat_rounds import ChatRoundStore, ChatState
from threadrunner.stores.files import FileStore
from threadrunner.stores.messages import MessageStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore
from threadrunner.stores.tool_call_ledger import ToolCallLedger
from threadrunner.stores.upstream_assistants import UpstreamAssistantStore
from threadrunner.workflow import check_steps, finish_steps, start_steps
from threadrunner.workflow.context import StepContext

from local.emulator import EmulatorServer
from tests.support.aws import moto_tables

BUCKET = "files"
POLL = PollSettings(first_wait_seconds=0, max_wait_seconds=0, max_polls=20)
# Fast retries: the waits are recorded, never slept.
RETRIES = RetryPolicy(
    max_attempts=4, base_seconds=0.01, max_backoff_seconds=0.04, max_retry_after_seconds=1.0, budget_seconds=5
)
# The calls that start a model turn, on either server.
MODEL_TURNS = ("/v1/responses", "/v1/chat/completions")


@dataclass(frozen=True)
class Fault:
    """Answer ``status`` to the next POST whose path ends with ``path``: ``before`` the upstream sees it, or
    ``after`` it took it (its own answer dropped)."""

    path: str
    status: int
    when: Literal["before", "after"]


class WireFaults(httpx.BaseTransport):
    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.pending: list[Fault] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fault = next(
            (f for f in self.pending if request.method == "POST" and request.url.path.endswith(f.path)), None
        )
        if fault is None:
            return self._inner.handle_request(request)
        self.pending.remove(fault)
        if fault.when == "after":
            self._inner.handle_request(request).close()
        body = b'{"error": {"message": "Bad gateway", "type": "server_error", "param": null, "code": null}}'
        return httpx.Response(fault.status, content=body, headers={"content-type": "application/json"})

    def close(self) -> None:
        self._inner.close()


@dataclass
class World:
    ctx: StepContext
    primary: EmulatorServer
    fallback: EmulatorServer
    breakers: CircuitBreakerStore
    wire: WireFaults
    waits: list[float] = field(default_factory=list)  # the primary's retry waits

    def new_run(
        self,
        message: str = "hello",
        files: dict[str, tuple[str, bytes]] | None = None,
        engine: str = "responses",
    ) -> RunRecord:
        """A run on a thread of its own (so runs need not wait for each other's turn), with ``files``
        (name -> content type, bytes) uploaded and staged for it."""
        thread, _ = self.ctx.threads.get_or_create(
            user_id="alice",
            assistant="data-analyst",
            purpose=clock.new_id("p"),
            engine=engine,
            max_age_hours=24,
            ttl_days=30,
        )
        now = clock.now()
        file_ids = [self.staged_file(thread.id, name, *file) for name, file in (files or {}).items()]
        run = RunRecord(
            id=clock.new_id("run"),
            thread_id=thread.id,
            user_id="alice",
            assistant="data-analyst",
            engine=engine,
            model="gpt-4.1-mini",
            message=message,
            file_ids=file_ids,
            created_at=now,
            deadline_at=now + timedelta(minutes=5),
        )
        self.ctx.threads.acquire(thread, run.id)
        self.ctx.runs.create(run)
        self.ctx.messages.add(history.user_message(run))  # as the API does
        return run

    def staged_file(self, thread_id: str, name: str, content_type: str, data: bytes) -> str:
        """A file of a responses thread: staged upstream, its upload still in S3."""
        record = FileRecord(
            id=clock.new_id("file"),
            user_id="alice",
            thread_id=thread_id,
            engine="responses",
            filename=name,
            content_type=content_type,
            size_bytes=len(data),
            purpose=FilePurpose.input,
            status=FileStatus.ready,
            upstream_file_id=f"file-upstream-{name}",
            created_at=clock.now(),
        )
        assert self.ctx.files is not None
        self.ctx.files.create(record)
        boto3.client("s3", region_name="us-east-1").put_object(Bucket=BUCKET, Key=record.key, Body=data)
        return record.id

    def start(self, run: RunRecord) -> RunRecord:
        start_steps.start_run(
            StepInput(run_id=run.id, settings=POLL, run=RunProgress(status="queued")), self.ctx
        )
        return self.ctx.runs.get(run.id)

    def answer(self, run: RunRecord) -> str | None:
        """Check run, then Collect outputs: the answer of a run that needs no tools."""
        step = StepInput(run_id=run.id, settings=POLL, run=RunProgress(status="in_progress"))
        assert check_steps.check_run(step, self.ctx).status == "completed"
        finish_steps.collect_outputs(step, self.ctx)
        return self.ctx.runs.get(run.id).answer

    def creates(self, server: EmulatorServer) -> list[str]:
        """The model turns a server was asked for (answered or refused)."""
        return [e.path for e in server.exchanges if e.method == "POST" and e.path in MODEL_TURNS]


@contextmanager
def worlds(primary: EmulatorServer, fallback: EmulatorServer) -> Iterator[Callable[..., World]]:
    """Makes Worlds over fresh moto tables: ``make(primary_url=..., timeout=..., **run_settings)``."""
    primary.reset()
    fallback.reset()
    with moto_tables() as tables, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "deprecated", DeprecationWarning)  # the SDK's Assistants methods
        runs_table = tables["runs"]

        def make(*, primary_url: str | None = None, timeout: float = 5.0, **settings: Any) -> World:
            run_settings = RunSettings(**{"fallback_engine": "chat", **settings})
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            blobs = BlobStore(s3, BUCKET)
            messages = MessageStore(tables["messages"], blobs, inline_bytes=32_768)
            waits: list[float] = []
            wire = WireFaults()
            client = new_client(
                "sk-test", primary_url or primary.base_url, timeout, RETRIES, sleep=waits.append, wire=wire
            )
            registry = AssistantRegistry(UpstreamAssistantStore(runs_table), run_settings.environment)
            engines = {
                "responses": ResponsesEngine(client),
                "assistants": AssistantsEngine(client, registry),
                "chat": ChatEngine(
                    new_client("sk-test", fallback.base_url, 5.0, RETRIES, sleep=lambda _: None),
                    ChatState(messages, ChatRoundStore(runs_table), run_settings.context_budget, blobs=blobs),
                ),
            }
            breakers = CircuitBreakerStore(runs_table)
            ctx = StepContext(
                runs=RunStore(runs_table),
                ledger=ToolCallLedger(runs_table),
                threads=ThreadStore(tables["threads"]),
                engine=engines.__getitem__,
                run_settings=run_settings,
                tool_settings=ToolSettings(),
                tool_functions={},
                messages=messages,
                start_execution=lambda run_id: (
                    f"arn:aws:states:us-east-1:123456789012:execution:run:{run_id}"
                ),
                fallback=Fallback(breakers, run_settings),
                files=FileStore(tables["threads"]),
            )
            return World(ctx, primary, fallback, breakers, wire, waits)

        yield make


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there any more
